"""The API's reads: a room's history, its users, and the rooms a token may see."""

from __future__ import annotations

import json

from chatctl.broker.base import History, ListsRooms
from chatctl.errors import BrokerError
from chatctl.protocol import parse_since, relabel, valid_room
from chatctl.server.context import SessionContext
from chatctl.server.httpapi.answers import ApiError, Reply
from chatctl.server.httpapi.exchange import Exchange
from chatctl.server.httpapi.routes import authorize, authorize_room, check_sanctions

#: ``limit`` of a history request: the default and the most
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: seconds a client is told to wait when the broker cannot answer
BROKER_RETRY_AFTER = 1.0
NDJSON = "application/x-ndjson"


def broker_unavailable(exc: BrokerError) -> ApiError:
    return ApiError(
        503, "broker_unavailable", f"broker unavailable, retry later: {exc}", retry_after=1.0
    )


def _int_param(exchange: Exchange, name: str, *, low: int, high: int | None = None) -> int | None:
    value = exchange.request.param(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < low or (high is not None and int(value) > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ApiError(400, "invalid_field", f"{name} must be an integer {bound}")
    return int(value)


async def history(ctx: SessionContext, exchange: Exchange, name: str) -> Reply:
    """``GET /rooms/{room}/messages?since=&before=&limit=``: the kept messages, oldest first,
    as ``{"room", "epoch", "last_id", "complete", "messages"}`` or, asked with ``Accept:
    application/x-ndjson``, one message frame per line."""
    room, claims = authorize_room(ctx, exchange, name)
    await check_sanctions(ctx, room, claims.user, writing=False)
    try:
        since = parse_since(exchange.request.param("since"))
    except ValueError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None
    before = _int_param(exchange, "before", low=1)
    limit = _int_param(exchange, "limit", low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
    try:
        found = await ctx.broker.history(room, since=since, limit=limit, before=before)
    except BrokerError as exc:
        raise broker_unavailable(exc) from None
    if NDJSON in (exchange.request.header("accept") or ""):
        body = "".join(relabel(m.frame, room, name) + "\n" for m in found.messages).encode()
        return Reply(200, body, content_type=NDJSON)
    return Reply(200, history_body(name, found, room), content_type="application/json")


def history_body(room: str, found: History, stored: str | None = None) -> bytes:
    """The JSON object of a history answer; the messages are their frames as stored (with
    ``stored``, the room's internal name, named ``room`` in them: a conversation's)."""
    head = json.dumps(
        {"room": room, "epoch": found.epoch, "last_id": found.last_id, "complete": found.complete},
        separators=(",", ":"),
    )
    messages = ",".join(m.frame for m in found.messages)
    if stored is not None:
        messages = relabel(messages, stored, room)
    return f'{head[:-1]},"messages":[{messages}]}}\n'.encode()


async def users(ctx: SessionContext, exchange: Exchange, name: str) -> Reply:
    """``GET /rooms/{room}/users``: ``{"room", "users"}``, the users with a connection."""
    room, _ = authorize_room(ctx, exchange, name)
    try:
        listed = await ctx.broker.users(room)
    except BrokerError as exc:
        raise broker_unavailable(exc) from None
    return Reply.json(200, {"room": name, "users": listed})


async def rooms(ctx: SessionContext, exchange: Exchange, _: str) -> Reply:
    """``GET /rooms``: the rooms with members that the token may see, each with its epoch,
    last id and user count: on every node when the broker can list them (:class:`ListsRooms`,
    Redis), else on this node (a broker does not list every room it keeps)."""
    claims = authorize(ctx, exchange, None)
    found = []
    try:
        names = set(ctx.hub.rooms)
        if isinstance(ctx.broker, ListsRooms):
            names.update(await ctx.broker.member_rooms())
        for room in sorted(names):
            if not valid_room(room) or not claims.allows(room):  # never the server's own
                continue
            count = len(await ctx.broker.users(room))
            if not count and room not in ctx.hub.rooms:
                continue  # its last member left, or its node died, a moment ago
            last = await ctx.broker.history(room, since=None, limit=1)
            found.append(
                {"room": room, "epoch": last.epoch, "last_id": last.last_id, "users": count}
            )
    except BrokerError as exc:
        raise broker_unavailable(exc) from None
    return Reply.json(200, {"rooms": found})
