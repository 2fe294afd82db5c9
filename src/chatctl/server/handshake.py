"""The opening handshake: route, room name, token and resume parameters, all checked before
the upgrade. A refused request gets a plain-text HTTP answer and never becomes a WebSocket.

=======  =====================================================================
400      bad room name (or user name of ``/ws/@USER``) or bad ``since`` / ``history`` /
         ``epoch`` / ``presence`` / ``receive`` / ``format`` parameter; ``presence=0``
         without ``receive=0``; more than one ``Authorization``
401      missing, malformed, expired, badly signed or revoked token
403      valid token that does not allow the room (``/ws/@USER``: direct messages turned
         off by the server or the token)
404      a path other than ``/ws/{room}`` (``/healthz`` and ``/metrics`` are answered
         before this, see server/http.py)
=======  =====================================================================

The server adds 403 for a browser ``Origin`` that is not allowed, 429 for a user over its
connection or room limits and 503 for a full node (server/limits.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.datastructures import Headers

from chatctl.errors import PermissionDenied, TokenError
from chatctl.protocol import (
    ROOM_RULE,
    conversation_name,
    conversation_peer,
    dm_room,
    is_conversation,
    parse_epoch,
    parse_history,
    parse_since,
    valid_room,
)
from chatctl.server.direct import check_dms
from chatctl.tokens.claims import Claims

WS_PREFIX = "/ws/"

#: Why ``?presence=0`` needs ``?receive=0``: unlisted but reading, a connection would be an
#: invisible reader of the room (docs/security.md).
INVISIBLE_READER = "presence=0 needs receive=0: a connection that reads the room is listed in it"


@dataclass(frozen=True, slots=True)
class Admission:
    """What an accepted handshake asked for (kept for the life of the connection: the token's
    claims without its whole decoded payload)."""

    claims: Claims
    #: the room the connection is in: for ``/ws/@USER``, the conversation's internal name
    room: str
    since: int | None
    epoch: str | None
    history: int | None
    #: False with ``?presence=0`` (only with ``?receive=0``): a write-only client that neither
    #: joins the user list nor announces joins and leaves (``chatctl send`` in a cron job is
    #: not a room member)
    presence: bool = True
    #: False with ``?receive=0``: a write-only client (``chatctl send``) that gets its own
    #: acks and errors but none of the room's traffic
    receive: bool = True
    #: True with ``?format=text``: plain text both ways, for websocat and wscat users (each
    #: frame sent is a message, each frame received a line: server/plaintext.py)
    text: bool = False
    #: the other user of a direct conversation (``/ws/@USER``); None in a room
    peer: str | None = None

    @property
    def label(self) -> str:
        """The room as the client names it: ``@USER`` for a conversation."""
        return self.room if self.peer is None else conversation_name(self.peer)


class Refusal(Exception):
    """The handshake is refused with ``status`` and a one-line ``reason``; ``kind`` is a short
    fixed label for metrics (never user input)."""

    def __init__(
        self, status: HTTPStatus, reason: str, *, user: str | None = None, kind: str = "other"
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.user = user
        self.kind = kind


def bearer_token(headers: Headers, query: dict[str, list[str]]) -> str | None:
    """The token from ``Authorization: Bearer …`` or, for browsers, the ``token`` parameter.

    Raises :class:`Refusal` (400) for more than one ``Authorization`` header: which one
    counts is ambiguous, and proxies may disagree with the server on it."""
    values = headers.get_all("Authorization")
    if len(values) > 1:
        raise Refusal(
            HTTPStatus.BAD_REQUEST,
            "bad request: more than one Authorization header",
            kind="bad_header",
        )
    auth = values[0] if values else None
    if auth is not None:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""
    tokens = query.get("token")
    return tokens[-1] if tokens else None


def admit(
    path: str,
    headers: Headers,
    verify: Callable[[str], Claims],
    *,
    max_history: int,
    dms: bool = True,
) -> Admission:
    """Check one upgrade request; return what it asked for or raise :class:`Refusal`.
    ``verify`` turns the token into claims or raises TokenError (a bad or revoked token).

    ``/ws/@USER`` is the conversation of the token's user with ``USER`` (``dms``: the server
    allows direct messages), whatever the token's room globs say."""
    parts = urlsplit(path)
    if not parts.path.startswith(WS_PREFIX):
        raise Refusal(HTTPStatus.NOT_FOUND, "not found: rooms live at /ws/{room}", kind="not_found")
    room = unquote(parts.path[len(WS_PREFIX) :])
    peer: str | None = None
    if is_conversation(room):
        try:
            peer = conversation_peer(room)
        except ValueError as exc:
            raise Refusal(HTTPStatus.BAD_REQUEST, str(exc), kind="bad_room") from None
    elif not valid_room(room):
        raise Refusal(HTTPStatus.BAD_REQUEST, f"invalid room name: {ROOM_RULE}", kind="bad_room")
    query = parse_qs(parts.query, keep_blank_values=True)

    token = bearer_token(headers, query)
    if token is None:
        raise Refusal(
            HTTPStatus.UNAUTHORIZED,
            "missing token: send Authorization: Bearer TOKEN",
            kind="missing_token",
        )
    try:
        claims = verify(token)
        if claims.raw.get("hook") is not None:
            raise PermissionDenied("a webhook token only posts to its /hooks/ URL")
        if peer is None:
            claims.check_room(room)
        else:
            check_dms(claims, enabled=dms)
            room = dm_room(claims.user, peer)
    except PermissionDenied as exc:
        raise Refusal(HTTPStatus.FORBIDDEN, str(exc), kind="room_forbidden") from None
    except TokenError as exc:
        raise Refusal(HTTPStatus.UNAUTHORIZED, str(exc), kind="invalid_token") from None

    try:
        since = parse_since(_last(query, "since"))
        history = parse_history(_last(query, "history"), cap=max_history)
        epoch = parse_epoch(_last(query, "epoch"))
        presence = _flag(query, "presence")
        receive = _flag(query, "receive")
        if not presence and receive:
            raise ValueError(INVISIBLE_READER)
        form = _last(query, "format") or "json"
        if form not in ("json", "text"):
            raise ValueError("format must be json or text")
    except ValueError as exc:
        raise Refusal(
            HTTPStatus.BAD_REQUEST, str(exc), user=claims.user, kind="bad_param"
        ) from None
    return Admission(
        claims.slim(),
        room,
        since,
        epoch,
        history,
        presence=presence,
        receive=receive,
        text=form == "text",
        peer=peer,
    )


def _flag(query: dict[str, list[str]], name: str) -> bool:
    """A 0/1 parameter that defaults to 1."""
    value = _last(query, name)
    if value not in (None, "", "0", "1"):
        raise ValueError(f"{name} must be 0 or 1")
    return value != "0"


def _last(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None
