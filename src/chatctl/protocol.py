"""The chatctl wire protocol: frame types, parsing, validation and serialisation.

No I/O happens here: this module imports neither asyncio nor websockets, so every rule of the
protocol is tested with plain function calls. docs/protocol.md is the prose version of it.

Every frame is one JSON object in one WebSocket text frame, with a ``type`` field.
A client frame without ``type`` but with ``message`` is a chat message (what a browser
sending ``{"message": "hi"}`` expects).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from functools import cached_property
from typing import Any, Literal, NoReturn

from chatctl.errors import ChatctlError

PROTOCOL_VERSION = 1

#: Largest incoming WebSocket frame/message in bytes; over it the server closes with 1009.
MAX_FRAME_BYTES = 64 * 1024
#: Longest chat message text in characters; over it the sender gets a ``message_too_long`` error.
MAX_MESSAGE_CHARS = 8000
#: Longest client-chosen message id.
MAX_CLIENT_ID_CHARS = 64
#: Messages kept per room for history and resume, unless configured otherwise.
DEFAULT_HISTORY = 1000
#: History messages a welcome carries when the client asks for neither ``since`` nor ``history``.
DEFAULT_WELCOME_HISTORY = 20
#: Most users a welcome lists; ``user_count`` gives the total and ``who`` the full list. Without
#: a bound, a reconnect storm of a room of N users writes N welcomes of N names: O(N^2) bytes.
MAX_WELCOME_USERS = 100
#: Seconds during which a repeated (user, client_id) in a room returns the original ack.
DEFAULT_DEDUP_WINDOW = 600.0

ROOM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ROOM_RULE = "1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
USER_RULE = "1-64 characters, none of them whitespace, control, invisible or bidi formatting"
#: Unicode categories no user name may contain: control (Cc), format — zero-width and bidi
#: controls such as U+200B, U+200D, U+202E — (Cf), surrogate (Cs), private use (Co),
#: unassigned (Cn) and every separator (Zs, Zl, Zp). ``alice\u200b`` would look like ``alice``.
USER_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
#: Categories that draw nothing: a message made only of them is blank.
BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
EPOCH_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Most digits a ``since`` may have (ids stay far below 10**19).
MAX_SINCE_DIGITS = 19


class CloseCode(IntEnum):
    """WebSocket close codes the server uses."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    POLICY_VIOLATION = 1008  # sustained abuse (e.g. rate limit)
    MESSAGE_TOO_BIG = 1009  # frame over the size limit
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # graceful drain, or the room's history was lost: resume
    TRY_AGAIN_LATER = 1013  # the broker is unavailable: reconnect with backoff
    TOKEN_EXPIRED = 4001  # the token's exp (plus leeway) passed without a refresh
    SLOW_CONSUMER = 4008  # pending output over the per-connection bound


class ErrorCode(StrEnum):
    """The ``code`` of an error frame. The connection stays open after every one of them."""

    INVALID_JSON = "invalid_json"  # not JSON, or a number that is not finite (NaN, 1e999)
    INVALID_FRAME = "invalid_frame"  # JSON but not an object, or a binary frame
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"  # a field of the wrong type or form
    MESSAGE_TOO_LONG = "message_too_long"
    BROKER_UNAVAILABLE = "broker_unavailable"  # not stored, not acked: retry later
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    INVALID_TOKEN = "invalid_token"  # a refresh token that does not verify, or another user's
    FORBIDDEN = "forbidden"  # a refresh token that does not allow the connection's room


class ProtocolError(ChatctlError):
    """A client frame broke a rule; the server answers it with an error frame."""

    def __init__(self, code: ErrorCode, reason: str, *, client_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.client_id = client_id

    def to_frame(self) -> ErrorFrame:
        return ErrorFrame(code=self.code, reason=self.reason, client_id=self.client_id)


def dumps(obj: dict[str, Any]) -> str:
    """Serialise one frame: compact, UTF-8 kept as is, and strict JSON: a NaN or infinite float
    raises ``ValueError`` instead of writing ``NaN``/``Infinity``, which ``JSON.parse`` rejects."""
    return _ENCODER.encode(obj)


def loads(data: str) -> Any:
    """Parse strict JSON: ``NaN``, ``Infinity`` and numbers too large for a double (``1e999``)
    raise ``ValueError``, so nothing parsed here can make :func:`dumps` fail."""
    return _DECODER.decode(data)


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is too large for a double")
    return value


# Built once: json.dumps/json.loads with options build a new encoder/decoder at every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def valid_room(room: str) -> bool:
    return ROOM_RE.fullmatch(room) is not None


def valid_user(user: str) -> bool:
    return user_problem(user) is None


def user_problem(user: str) -> str | None:
    """Why ``user`` is not a valid user name (one line, safe to log), or None if it is."""
    if not 0 < len(user) <= 64:
        return f"a user name has 1-64 characters, not {len(user)}"
    for char in user:
        if char.isspace() or unicodedata.category(char) in USER_FORBIDDEN_CATEGORIES:
            return f"{describe_char(char)} is not allowed in a user name"
    return None


def describe_char(char: str) -> str:
    """``U+200B ZERO WIDTH SPACE``: a character named without printing it."""
    name = unicodedata.name(char, "") or unicodedata.category(char)
    return f"U+{ord(char):04X} {name}".rstrip()


def is_blank(text: str) -> bool:
    """True when ``text`` draws nothing: only whitespace, control and format characters
    (U+200B ZERO WIDTH SPACE alone is blank; emoji joined by U+200D ZERO WIDTH JOINER are not)."""
    return not any(
        not c.isspace() and unicodedata.category(c) not in BLANK_CATEGORIES for c in text
    )


# --------------------------------------------------------------------------- server -> client

MessageKind = Literal["text", "action"]


@dataclass(frozen=True, slots=False)
class Message:
    """A stored chat message: what ``message`` frames and history carry.

    ``id`` is room-scoped and strictly increasing; ``ts`` is the server's Unix time in seconds.
    The serialised frame is computed once and shared by every delivery.
    """

    id: int
    room: str
    user: str
    text: str
    ts: float
    kind: MessageKind = "text"
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "message",
            "id": self.id,
            "room": self.room,
            "user": self.user,
            "message": self.text,
            "ts": self.ts,
            "kind": self.kind,
        }
        if self.client_id is not None:
            d["client_id"] = self.client_id
        return d

    @cached_property
    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        """Build from a ``message`` frame or a stored record; raise ``ValueError`` if malformed."""
        try:
            kind = d.get("kind", "text")
            client_id = d.get("client_id")
            msg = cls(
                id=int(d["id"]),
                room=str(d["room"]),
                user=str(d["user"]),
                text=str(d["message"]),
                ts=float(d["ts"]),
                kind="action" if kind == "action" else "text",
                client_id=None if client_id is None else str(client_id),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a message record: {exc}") from exc
        return msg


@dataclass(frozen=True)
class Welcome:
    """First frame on every connection.

    ``last_id`` is the newest message id in the room when the connection subscribed (0 if none):
    everything after it arrives live. ``recovered`` is set only when the client asked to resume
    (``since``): True when ``history`` holds every message after ``since``; False when some
    were no longer kept (or the room's ``epoch`` changed), so the client knows it missed some.
    """

    user: str
    room: str
    epoch: str
    last_id: int
    history: list[Message]
    #: the room's users, sorted, up to :data:`MAX_WELCOME_USERS` of them (``user_count`` says
    #: how many there are; a ``who`` request lists them all)
    users: list[str]
    since: int | None = None
    recovered: bool | None = None
    server: str = ""
    #: the frame-rate limits this connection is held to (``rate`` frames/s, ``burst``), so a
    #: client can pace itself instead of being refused; absent when unlimited
    limits: dict[str, float] | None = None
    #: how many users the room has; None (a server older than ``user_count``) = ``len(users)``
    user_count: int | None = None

    @property
    def total_users(self) -> int:
        """Users in the room, whether or not ``users`` lists them all."""
        return len(self.users) if self.user_count is None else max(self.user_count, len(self.users))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": "welcome",
            "protocol": PROTOCOL_VERSION,
            "user": self.user,
            "room": self.room,
            "epoch": self.epoch,
            "last_id": self.last_id,
            "history": [m.to_dict() for m in self.history],
            "users": self.users,
            "user_count": self.total_users,
            "server": self.server,
        }
        if self.limits:
            d["limits"] = self.limits
        if self.since is not None:
            d["since"] = self.since
            d["recovered"] = self.recovered
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())


@dataclass(frozen=True)
class Ack:
    """The broker stored the message with client id ``client_id`` as ``id``.

    ``duplicate`` is true when this client id was seen before: the original ack is returned and
    the message is not delivered again.
    """

    client_id: str
    id: int
    room: str
    ts: float
    duplicate: bool = False

    def frame(self) -> str:
        return dumps(
            {
                "type": "ack",
                "client_id": self.client_id,
                "id": self.id,
                "room": self.room,
                "ts": self.ts,
                "duplicate": self.duplicate,
            }
        )


@dataclass(frozen=True)
class ErrorFrame:
    code: ErrorCode
    reason: str
    client_id: str | None = None
    retry_after: float | None = None
    #: set when this message was refused only because an earlier message of the connection,
    #: the one with this client id, was refused and has not been sent again (see
    #: docs/protocol.md, "Order"): re-send from that one on, in order
    blocked_by: str | None = None

    def frame(self) -> str:
        d: dict[str, Any] = {"type": "error", "code": str(self.code), "reason": self.reason}
        if self.client_id is not None:
            d["client_id"] = self.client_id
        if self.retry_after is not None:
            d["retry_after"] = self.retry_after
        if self.blocked_by is not None:
            d["blocked_by"] = self.blocked_by
        return dumps(d)


#: Error codes after which the server stores no later message of the connection until the
#: refused one is sent again (docs/protocol.md, "Order"); a client re-sends from it on.
RETRYABLE_CODES = frozenset(
    {ErrorCode.BROKER_UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL}
)


@dataclass(frozen=True)
class RateLimit:
    """The frame rate a connection is held to: ``rate`` frames per second, bursts of up to
    ``burst``. Announced in the welcome (``limits``) and, when it changes, in a ``limits``
    frame (the user's connections on the node share the per-user budget)."""

    rate: float
    burst: float

    def to_dict(self) -> dict[str, float]:
        return {"rate": self.rate, "burst": self.burst}

    def frame(self) -> str:
        return dumps({"type": "limits", "rate": self.rate, "burst": self.burst})


PresenceEvent = Literal["join", "leave"]


@dataclass(frozen=True)
class Presence:
    """``user`` joined or left ``room`` (first connection in / last connection out)."""

    room: str
    user: str
    event: PresenceEvent
    ts: float

    @cached_property
    def frame(self) -> str:
        return dumps(
            {
                "type": "presence",
                "event": self.event,
                "room": self.room,
                "user": self.user,
                "ts": self.ts,
            }
        )


@dataclass(frozen=True)
class PresenceBatch:
    """Several users joined or left ``room`` within one presence tick of the server.

    A server coalesces a room's presence changes: one frame per room per tick instead of one
    per change, so a join storm of N users costs O(N) frames instead of O(N^2). A user is in
    at most one of ``joins`` and ``leaves``: a join and a leave of the same user within one
    tick cancel out (nothing changed for the others). ``ts`` is the time of the newest change.
    """

    room: str
    joins: tuple[str, ...]
    leaves: tuple[str, ...]
    ts: float

    def presences(self) -> list[Presence]:
        """The batch as single changes (leaves first), each stamped with the batch's ``ts``."""
        return [Presence(self.room, u, "leave", self.ts) for u in self.leaves] + [
            Presence(self.room, u, "join", self.ts) for u in self.joins
        ]

    def without_join(self, user: str) -> PresenceBatch:
        """The batch minus ``user``'s join (a welcome listing ``user`` already said it)."""
        return PresenceBatch(
            self.room, tuple(u for u in self.joins if u != user), self.leaves, self.ts
        )

    @cached_property
    def frame(self) -> str:
        head, joins, tail = self._pieces
        return head + ",".join(joins) + tail

    def frame_without_join(self, user: str) -> str | None:
        """:attr:`frame` of :meth:`without_join`, from the encoded pieces of this one: a
        server writes it to each connection that joined during the tick, so it must not
        cost a JSON encoding each. None when nothing would be left."""
        head, joins, tail = self._pieces
        at = self._join_index.get(user)
        if at is None:
            return self.frame
        if len(joins) == 1 and not self.leaves:
            return None
        return head + ",".join(joins[:at] + joins[at + 1 :]) + tail

    @cached_property
    def _pieces(self) -> tuple[str, list[str], str]:
        """The frame cut around the items of ``joins``: ``head + ",".join(items) + tail``."""
        head = dumps({"type": "presence_batch", "room": self.room})[:-1] + ',"joins":['
        tail = "]," + dumps({"leaves": list(self.leaves), "ts": self.ts})[1:]
        return head, [_ENCODER.encode(u) for u in self.joins], tail

    @cached_property
    def _join_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.joins)}


@dataclass(frozen=True)
class Refreshed:
    """The server verified a ``refresh`` token: the connection now lives until ``exp``."""

    user: str
    exp: float

    def frame(self) -> str:
        return dumps({"type": "refreshed", "user": self.user, "exp": self.exp})


def who_frame(room: str, users: list[str]) -> str:
    return dumps({"type": "who", "room": room, "users": users})


def pong_frame(data: Any) -> str:
    return dumps({"type": "pong", "data": data})


# --------------------------------------------------------------------------- client -> server


@dataclass(frozen=True)
class SendMessage:
    """A chat message from a client. ``client_id`` asks for an ack and de-duplication."""

    text: str
    client_id: str | None = None
    kind: MessageKind = "text"

    def frame(self) -> str:
        d: dict[str, Any] = {"type": "message", "message": self.text}
        if self.client_id is not None:
            d["client_id"] = self.client_id
        if self.kind != "text":
            d["kind"] = self.kind
        return dumps(d)


@dataclass(frozen=True)
class Who:
    """Ask for the room's user list (answered by a ``who`` frame)."""

    def frame(self) -> str:
        return dumps({"type": "who"})


@dataclass(frozen=True)
class Ping:
    """Application-level ping, answered by ``pong`` with the same ``data``."""

    data: Any = field(default=None)

    def frame(self) -> str:
        return dumps({"type": "ping", "data": self.data})


@dataclass(frozen=True)
class Refresh:
    """A fresh token for this connection, sent before the current one expires (answered by
    ``refreshed``, or an ``invalid_token``/``forbidden`` error)."""

    token: str = field(repr=False)

    def frame(self) -> str:
        return dumps({"type": "refresh", "token": self.token})


ClientFrame = SendMessage | Who | Ping | Refresh


def parse_client_frame(data: str | bytes, *, max_chars: int = MAX_MESSAGE_CHARS) -> ClientFrame:
    """Parse and validate one frame a client sent; raise :class:`ProtocolError` if it is bad."""
    if isinstance(data, bytes):
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, "binary frames are not supported; send JSON text"
        )
    try:
        obj = loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "a frame must be a JSON object")
    if ("\\u" in data or not data.isascii()) and not _encodable(obj):
        # "\ud800" is valid JSON but no UTF-8 can carry it: stored, it would poison history
        raise ProtocolError(
            ErrorCode.INVALID_JSON, "invalid JSON: a \\u escape encodes a lone surrogate"
        )

    client_id = obj.get("client_id")
    if client_id is not None and (
        not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID_CHARS
    ):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            f"client_id must be a string of 1-{MAX_CLIENT_ID_CHARS} characters",
        )

    ftype = obj.get("type", "message" if "message" in obj else None)
    if ftype is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field: type", client_id=client_id)
    if ftype == "message":
        return _parse_message(obj, client_id, max_chars)
    if ftype == "who":
        return Who()
    if ftype == "ping":
        return Ping(obj.get("data"))
    if ftype == "refresh":
        return _parse_refresh(obj)
    raise ProtocolError(
        ErrorCode.UNKNOWN_TYPE, f"unknown frame type: {str(ftype)[:40]!r}", client_id=client_id
    )


def _parse_refresh(obj: dict[str, Any]) -> Refresh:
    token = obj.get("token")
    if token is None:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field: token")
    if not isinstance(token, str) or not token:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "token must be a non-empty string")
    return Refresh(token)


def _encodable(obj: dict[str, Any]) -> bool:
    """True when ``obj`` serialises to valid UTF-8 (no lone surrogates anywhere in it)."""
    try:
        dumps(obj).encode()
    except UnicodeEncodeError:
        return False
    return True


def _parse_message(obj: dict[str, Any], client_id: str | None, max_chars: int) -> SendMessage:
    if "message" not in obj:
        raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field: message", client_id=client_id)
    text = obj["message"]
    if not isinstance(text, str):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, "message must be a string", client_id=client_id
        )
    if len(text) > max_chars:
        raise ProtocolError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"message is {len(text)} characters; the limit is {max_chars}",
            client_id=client_id,
        )
    if is_blank(text):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "message is empty", client_id=client_id)
    if "\x00" in text:  # C strings, terminals and many loggers cut the text there
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, "message contains U+0000 (NUL)", client_id=client_id
        )
    kind = obj.get("kind", "text")
    if kind not in ("text", "action"):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, "kind must be 'text' or 'action'", client_id=client_id
        )
    return SendMessage(text=text, client_id=client_id, kind=kind)


# --------------------------------------------------------------------------- client side


def parse_server_frame(data: str | bytes) -> dict[str, Any]:
    """Decode one server frame for a client; raise :class:`ProtocolError` if it is not an object
    with a string ``type``. Clients dispatch on ``type`` and ignore types they do not know."""
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"server sent invalid JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "server frame is not a typed JSON object")
    return obj


# --------------------------------------------------------------------------- handshake query


def parse_since(value: str | None) -> int | None:
    """Parse the ``since`` query parameter: a non-negative integer message id."""
    if not value:
        return None
    if not _ascii_digits(value) or len(value) > MAX_SINCE_DIGITS:
        raise ValueError("since must be a non-negative integer message id (ASCII digits)")
    return int(value)


def parse_history(value: str | None, *, cap: int) -> int | None:
    """Parse the ``history`` query parameter: a message count, clipped to ``cap``."""
    if not value:
        return None
    if not _ascii_digits(value):
        raise ValueError("history must be a non-negative integer (ASCII digits)")
    digits = value.lstrip("0") or "0"
    return cap if len(digits) > 9 else min(int(digits), cap)


def parse_epoch(value: str | None) -> str | None:
    """Parse the ``epoch`` query parameter: the epoch a welcome carried."""
    if not value:
        return None
    if EPOCH_RE.fullmatch(value) is None:
        raise ValueError("epoch must be 1-64 characters from A-Z a-z 0-9 . _ -")
    return value


def _ascii_digits(value: str) -> bool:
    """``0``-``9`` only: ``str.isdigit`` and ``int`` also take ``²``, ``٣`` or ``1_000``."""
    return value.isascii() and value.isdigit()
