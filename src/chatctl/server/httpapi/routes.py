"""Which handler answers which request, and what every handler checks first: the token
(``Authorization: Bearer``, or ``?token=`` for a browser's ``EventSource``) and the room,
before any body is read."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

from chatctl import web
from chatctl.errors import PermissionDenied, TokenError
from chatctl.protocol import ROOM_RULE, conversation_peer, dm_room, is_conversation, valid_room
from chatctl.server.context import SessionContext
from chatctl.server.direct import check_dms
from chatctl.server.httpapi.answers import ApiError, Reply
from chatctl.server.httpapi.exchange import Exchange
from chatctl.tokens.claims import Claims

#: request lines the API takes from websockets: these paths whatever the method...
API_PREFIXES = (b"/rooms", b"/hooks/", b"/api/")
#: ...and every method but these (websockets answers GET and HEAD: the upgrade and the page)
WEBSOCKETS_METHODS = (b"GET", b"HEAD")


def takes_over(request_line: bytes) -> bool:
    """True when the API answers the request that starts with ``request_line`` (without its
    CRLF): a method websockets does not serve, or a path of the API."""
    method, _, rest = request_line.partition(b" ")
    target, _, version = rest.partition(b" ")
    if not (method.isalpha() and method.isupper() and version.startswith(b"HTTP/1.")):
        return False  # not a request line: websockets answers it (400)
    if method not in WEBSOCKETS_METHODS:
        return True
    return target.startswith(API_PREFIXES) and (
        len(target) == 6 or target[6:7] in (b"/", b"?") or not target.startswith(b"/rooms")
    )


Route = Callable[[SessionContext, Exchange, str], Awaitable["Reply | None"]]

_ROOM = re.compile(r"^/rooms/([^/]+)/(messages|events|users)$")
_HOOK = re.compile(r"^/hooks/([^/]+)$")
#: paths websockets serves (to a GET): other methods get 405
_WEBSOCKET_PATHS = frozenset({"/healthz", "/metrics", *web.ROUTES})


async def dispatch(ctx: SessionContext, exchange: Exchange) -> Reply | None:
    """Answer one request by its method and path (404, 405 with ``Allow``)."""
    from chatctl.server.httpapi import admin, events, publish, reads

    request = exchange.request
    method, path = request.method, request.path
    if not takes_over(f"{method} {request.target} HTTP/1.1".encode("latin-1")):
        # a GET or HEAD of websockets' (the page, /healthz, /metrics, an upgrade) sent on a
        # connection kept alive after an API request: closed unanswered, so that the client
        # repeats it on a new connection, which websockets answers (curl and browsers do)
        exchange.unanswered = True
        return None
    table: dict[str, Route]
    arg = ""
    known = True
    if path == "/rooms":
        exchange.route = "rooms"
        table = {"GET": reads.rooms}
    elif (m := _ROOM.match(path)) is not None:
        arg, what = unquote(m.group(1)), m.group(2)
        exchange.route = f"room_{what}"
        if what == "messages":
            table = {"GET": reads.history, "POST": publish.post}
        elif what == "events":
            table = {"GET": events.stream}
        else:
            table = {"GET": reads.users}
    elif path == "/api/revoke":
        exchange.route = "revoke"
        table = {"POST": admin.revoke}
    elif (m := _HOOK.match(path)) is not None:
        arg = unquote(m.group(1))
        exchange.route = "hook"
        table = {"POST": publish.hook}
    else:
        known = False
    # as any error: the connection is kept alive unless the request's body was not read
    if not known and path.startswith("/ws/"):
        raise ApiError(405, "method_not_allowed", "use GET (a WebSocket upgrade)", allow="GET")
    if not known and path in _WEBSOCKET_PATHS:
        raise ApiError(405, "method_not_allowed", "use GET, HEAD", allow="GET, HEAD")
    if not known:
        raise ApiError(404, "not_found", "not found (see docs/http.md)")
    if "GET" in table:
        table["HEAD"] = table["GET"]
    handler = table.get(method)
    if handler is None:
        allow = ", ".join(table)
        raise ApiError(405, "method_not_allowed", f"use {allow}", allow=allow)
    return await handler(ctx, exchange, arg)


def room_of(name: str) -> str:
    if not valid_room(name):
        raise ApiError(400, "invalid_field", f"invalid room name: {ROOM_RULE}")
    return name


def authorize_room(
    ctx: SessionContext, exchange: Exchange, name: str, *, query_token: bool = True
) -> tuple[str, Claims]:
    """The room a path's ``name`` stands for, and the request's claims: a room the token
    allows, or for ``@USER`` the conversation of the token's user with ``USER`` (whatever
    the token's room globs say; 403 when direct messages are off or the token forbids them).
    No other name reaches a conversation: a room name never starts with ``+``."""
    if not is_conversation(name):
        room = room_of(name)
        return room, authorize(ctx, exchange, room, query_token=query_token)
    try:
        peer = conversation_peer(name)
    except ValueError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None
    claims = authorize(ctx, exchange, None, query_token=query_token)
    try:
        check_dms(claims, enabled=ctx.settings.dms)
    except PermissionDenied as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    return dm_room(claims.user, peer), claims


def authorize(
    ctx: SessionContext, exchange: Exchange, room: str | None, *, query_token: bool = True
) -> Claims:
    """The verified claims of the request's token, which must allow ``room`` (if given);
    401 ``invalid_token`` or 403 ``forbidden``. A webhook token writes only: refused here."""
    request = exchange.request
    values = request.headers_all("authorization")
    if len(values) > 1:
        raise ApiError(400, "bad_request", "more than one Authorization header")
    token: str | None = None
    if values:
        scheme, _, value = values[0].strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "invalid_token", "send Authorization: Bearer TOKEN")
        token = value.strip()
    elif query_token:
        token = request.param("token")
    if not token:
        raise ApiError(401, "invalid_token", "missing token: send Authorization: Bearer TOKEN")
    claims = verify(ctx, token)
    if claims.raw.get("hook") is not None:
        raise ApiError(403, "forbidden", "a webhook token only posts to its /hooks/ URL")
    if room is not None:
        try:
            claims.check_room(room)
        except PermissionDenied as exc:
            raise ApiError(403, "forbidden", str(exc)) from None
    return claims


def verify(ctx: SessionContext, token: str) -> Claims:
    try:
        return ctx.verify_token(token)
    except TokenError as exc:
        raise ApiError(401, "invalid_token", str(exc)) from None


async def check_sanctions(ctx: SessionContext, room: str, user: str, *, writing: bool) -> None:
    """403 ``forbidden`` for a user banned from ``room``, 403 ``muted`` for a muted one
    (``writing``), each with the moderator's reason (docs/protocol.md, "Moderation")."""
    from chatctl.errors import BrokerError
    from chatctl.server.moderation import refusal

    try:
        entry = await ctx.hub.sanctions.refuses(room, user, writing=writing)
    except BrokerError as exc:
        raise ApiError(
            503, "broker_unavailable", f"broker unavailable, retry later: {exc}", retry_after=1.0
        ) from None
    if entry is not None:
        code = "muted" if entry.kind == "mute" else "forbidden"
        ctx.metrics.counters.error(code)
        raise ApiError(403, code, refusal(room, entry, time.time()))
