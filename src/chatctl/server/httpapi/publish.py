"""``POST /rooms/{room}/messages`` and ``POST /hooks/{token}``: one message into a room,
answered once it is stored (201 with the ack), as a WebSocket ``message`` frame would be.

The checks come in the WebSocket's order, and the body is read only after the first ones:
token and room (401/403; 403 ``read_only`` for a room the token may only read), the
user's rate limit shared with its WebSocket connections (429 ``rate_limited`` with
``Retry-After``), the size (413 ``message_too_long``), the message's rules (400), then the
broker (503 ``broker_unavailable``: nothing stored).
An ``Idempotency-Key`` header (or ``client_id`` in a JSON body) is the message's client id:
sent again within the broker's de-duplication window, the original ack comes back with
``duplicate: true`` and nothing is delivered twice.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from chatctl.errors import BrokerError
from chatctl.protocol import (
    Ack,
    MessageKind,
    ProtocolError,
    SendMessage,
    clean_display,
    valid_room,
)
from chatctl.protocol.rules import MAX_CLIENT_ID_CHARS
from chatctl.server.context import SessionContext
from chatctl.server.direct import delivered
from chatctl.server.httpapi.answers import ApiError, Reply
from chatctl.server.httpapi.exchange import Exchange
from chatctl.server.httpapi.mrkdwn import plain_text
from chatctl.server.httpapi.reads import broker_unavailable
from chatctl.server.httpapi.routes import authorize_room, check_sanctions, verify

#: bytes of body allowed beyond the message's limit in characters (UTF-8, JSON escapes)
JSON_OVERHEAD = 4096


async def post(ctx: SessionContext, exchange: Exchange, name: str) -> Reply:
    room, claims = authorize_room(ctx, exchange, name, query_token=False)
    if room == name and not claims.writes(room):  # (a conversation: both its users write)
        raise ApiError(403, "read_only", f"token for {claims.user} only reads room {room}")
    return await _publish(ctx, exchange, room, claims.user, slack=None, label=name)


async def hook(ctx: SessionContext, exchange: Exchange, token: str) -> Reply:
    """An incoming webhook: the URL's token is a webhook token (``chatctl token create
    --webhook``) for one room; the body is plain text, the protocol's JSON, or Slack's
    incoming-webhook JSON (``{"text": …}``), whose ``username`` is the message's display
    name when the token has the ``display`` claim (``--allow-display-name``) and is ignored
    otherwise."""
    claims = verify(ctx, token)
    room = claims.raw.get("hook")
    if not isinstance(room, str) or not valid_room(room) or not claims.allows(room):
        raise ApiError(403, "forbidden", "not a webhook token (chatctl token create --webhook)")
    return await _publish(ctx, exchange, room, claims.user, slack=claims.raw.get("display") is True)


async def _publish(
    ctx: SessionContext,
    exchange: Exchange,
    room: str,
    user: str,
    *,
    slack: bool | None,
    label: str | None = None,
) -> Reply:
    """``slack``: None for the API's own posts, else whether a Slack ``username`` shows;
    ``label``: the room as the client named it (``@USER`` for a conversation)."""
    await check_sanctions(ctx, room, user, writing=True)
    wait = ctx.limits.take_request(user)
    if wait:
        ctx.metrics.counters.error("rate_limited")
        raise ApiError(
            429, "rate_limited", f"rate limit exceeded; retry in {wait:.2f}s", retry_after=wait
        )
    max_chars = ctx.settings.max_message_chars
    body = await exchange.body(max_chars * 4 + JSON_OVERHEAD)
    frame, display = _message(exchange, body, max_chars=max_chars, slack=slack)
    client_id = frame.client_id or "http-" + secrets.token_urlsafe(12)
    # only when there is one: a broker plugin written before display names still works
    extra = {} if display is None else {"display": display}
    started = time.perf_counter()
    try:
        result = await ctx.broker.publish(
            room, user, frame.text, kind=frame.kind, client_id=client_id, **extra
        )
    except BrokerError as exc:
        ctx.metrics.counters.error("broker_unavailable")
        raise broker_unavailable(exc) from None
    ctx.metrics.publish_seconds.observe(time.perf_counter() - started)
    ctx.metrics.counters.messages_in += 1
    msg = result.message
    if label is not None and label != room and not result.duplicate:  # a conversation
        await delivered(ctx.broker, msg, history=ctx.settings.history_size)
    ack = Ack(client_id, msg.id, label or room, msg.ts, result.duplicate, result.epoch)
    return Reply.json(200 if result.duplicate else 201, ack.to_dict())


def _message(
    exchange: Exchange, body: bytes, *, max_chars: int, slack: bool | None
) -> tuple[SendMessage, str | None]:
    """The message the body holds, and its display name (a Slack ``username`` that
    ``slack`` allows, cleaned)."""
    request = exchange.request
    display = None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_field", "the body is not UTF-8 text") from None
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    fields: dict[str, Any]
    if content_type == "application/json" or (slack is not None and text.lstrip().startswith("{")):
        try:
            fields = json.loads(text)
        except ValueError:
            raise ApiError(400, "invalid_json", "the body is not JSON") from None
        if not isinstance(fields, dict):
            raise ApiError(400, "invalid_frame", "the JSON body must be an object")
        if slack:
            display = clean_display(fields.get("username"))
        if slack is not None and "message" not in fields:
            fields = _from_slack(fields)
    elif content_type in ("", "text/plain", "application/x-www-form-urlencoded"):
        # curl -d sends form-urlencoded: its body is still the message as typed
        fields = {"message": text[:-1] if text.endswith("\n") else text}
    else:
        raise ApiError(
            415, "invalid_frame", "send text/plain or application/json (see docs/http.md)"
        )
    key = request.header("idempotency-key")
    if key is not None:
        if not 1 <= len(key) <= MAX_CLIENT_ID_CHARS:
            raise ApiError(
                400, "invalid_field", f"Idempotency-Key must be 1-{MAX_CLIENT_ID_CHARS} characters"
            )
        fields["client_id"] = key
    try:
        return SendMessage.from_dict(fields, max_chars=max_chars), display
    except ProtocolError as exc:
        status = 413 if exc.code == "message_too_long" else 400
        raise ApiError(status, exc.code, str(exc)) from None


def _from_slack(payload: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming-webhook JSON: ``text`` (or, without it, the ``fallback`` or text
    of its attachments and blocks) is the message, its links, mentions and escapes shown
    as Slack's clients show them (:func:`plain_text`), before the message's rules check
    it. Alertmanager's own webhook JSON (``alerts``) becomes one line per alert, as it is:
    its annotations are not Slack's format."""
    if isinstance(payload.get("alerts"), list) and "text" not in payload:
        return {"message": _from_alertmanager(payload["alerts"]), "kind": "text"}
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        parts: list[str] = []
        for item in payload.get("attachments") or []:
            if isinstance(item, dict):
                part = item.get("fallback") or item.get("text") or item.get("title")
                if isinstance(part, str):
                    parts.append(part)
        for block in payload.get("blocks") or []:
            inner = block.get("text") if isinstance(block, dict) else None
            if isinstance(inner, dict) and isinstance(inner.get("text"), str):
                parts.append(inner["text"])
        text = "\n".join(parts)
    kind: MessageKind = "text"
    return {"message": plain_text(text), "kind": kind}


def _from_alertmanager(alerts: list[Any]) -> str:
    lines = []
    for alert in alerts:
        if not isinstance(alert, dict):
            continue
        labels, notes = alert.get("labels"), alert.get("annotations")
        labels = labels if isinstance(labels, dict) else {}
        notes = notes if isinstance(notes, dict) else {}
        name = labels.get("alertname", "alert")
        what = notes.get("summary") or notes.get("description") or ""
        status = str(alert.get("status", "firing")).upper()
        lines.append(f"[{status}] {name}: {what}".rstrip(": "))
    return "\n".join(lines)
