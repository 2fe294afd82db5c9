"""``POST /api/revoke``: revoke a token, or every token of a user issued before a time, for
an operator without a shell on the server's host; allowed to tokens with ``admin: true``
(``chatctl token create --admin``). What ``chatctl token revoke`` does on the host, through
the same :class:`~chatctl.server.revocation.Revoker` (the broker's store, every node).

The body is JSON, one of::

    {"token": "eyJ..."}                  that token (kept until its exp)
    {"jti": "ID"}                        the token with that id
    {"user": "alice", "before": T}       every token of alice issued before T (seconds since
                                         1970, or an ISO 8601 time; default now)
"""

from __future__ import annotations

import json
import math
from typing import Any

from chatctl.errors import BrokerError, UsageError
from chatctl.protocol import user_problem
from chatctl.server.context import SessionContext
from chatctl.server.httpapi.answers import ApiError, Reply
from chatctl.server.httpapi.exchange import Exchange
from chatctl.server.httpapi.reads import broker_unavailable
from chatctl.server.httpapi.routes import authorize
from chatctl.tokens.revocation import Revocation, jti_problem, parse_before, token_revocation

#: bytes a revocation's body may have (a token and a little JSON)
MAX_BODY = 16 * 1024


async def revoke(ctx: SessionContext, exchange: Exchange, _: str) -> Reply:
    claims = authorize(ctx, exchange, None, query_token=False)
    if not claims.admin:
        raise ApiError(403, "forbidden", "revoking needs a token with admin: true")
    body = await exchange.body(MAX_BODY)
    entry = _entry(body)
    try:
        await ctx.revocations.revoke(entry)
    except BrokerError as exc:
        ctx.metrics.counters.error("broker_unavailable")
        raise broker_unavailable(exc) from None
    answer = {
        "type": "revoked",
        "kind": entry.kind,
        "key": entry.key,
        "exp": entry.exp,
        "revoked": entry.describe(),
    }
    if entry.kind == "user":
        answer["before"] = entry.before
    return Reply.json(200, answer)


def _entry(body: bytes) -> Revocation:
    try:
        fields: Any = json.loads(body)
    except ValueError:
        raise ApiError(400, "invalid_json", "the body is not JSON") from None
    if not isinstance(fields, dict):
        raise ApiError(400, "invalid_frame", "the JSON body must be an object")
    given = [name for name in ("token", "jti", "user") if name in fields]
    if len(given) != 1:
        raise ApiError(400, "invalid_field", "give exactly one of token, jti or user")
    value = fields[given[0]]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{given[0]} must be a string")
    try:
        if given[0] == "token":
            return token_revocation(value)
        if given[0] == "jti":
            problem = jti_problem(value)
            if problem is not None:
                raise ApiError(400, "invalid_field", problem)
            return Revocation.token(value, None)
        problem = user_problem(value)
        if problem is not None:
            raise ApiError(400, "invalid_field", f"user: {problem}")
        before = fields.get("before", "now")
        if isinstance(before, int | float) and not isinstance(before, bool):
            if not math.isfinite(before):
                raise ApiError(400, "invalid_field", "before must be a finite time")
            before = repr(float(before))
        if not isinstance(before, str):
            raise ApiError(400, "invalid_field", "before must be a number or a time")
        return Revocation.user(value, parse_before(before))
    except (ValueError, UsageError) as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None
