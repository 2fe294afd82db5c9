"""Server frames read into :mod:`chatctl.protocol`'s types: the one place a client decodes
what the server sends.

:func:`parse` decodes a frame once (``protocol.parse_server_frame``) and returns a typed
frame: :class:`~chatctl.protocol.Welcome`, :class:`~chatctl.protocol.Message`,
:class:`~chatctl.protocol.Ack`, :class:`~chatctl.protocol.ErrorFrame`,
:class:`~chatctl.protocol.Presence`, :class:`~chatctl.protocol.PresenceBatch`,
:class:`~chatctl.protocol.Refreshed`, :class:`~chatctl.protocol.RateLimit` (a ``limits``
frame), or :class:`UserList`, :class:`Pong`, :class:`Unknown` for the answers and types the
protocol module has no class for. A frame that is not a JSON object with a string ``type``,
or whose fields have the wrong types, raises :class:`~chatctl.protocol.ProtocolError`.

:func:`peek_type` finds a frame's ``type`` without decoding the rest of it when ``type`` is
the first key (as the chatctl server writes it), so a client can skip what it does not need
(``send`` skips the room's messages) for a fraction of a decode. It returns None for any
other order or spacing, and the frame is then decoded in full: the field order decides how
fast a frame is read, never how it is understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chatctl.protocol import (
    Ack,
    ErrorCode,
    ErrorFrame,
    Message,
    Presence,
    PresenceBatch,
    ProtocolError,
    RateLimit,
    Refreshed,
    Welcome,
    parse_server_frame,
)


@dataclass(frozen=True)
class UserList:
    """The answer to a ``who`` request: the users in ``room``."""

    room: str
    users: list[str]


@dataclass(frozen=True)
class Pong:
    """The answer to a ``ping``, with its ``data``."""

    data: Any


@dataclass(frozen=True)
class Unknown:
    """A frame of a type this client does not know (a newer server): ignored by clients."""

    type: str


ServerFrame = (
    Welcome
    | Message
    | Ack
    | ErrorFrame
    | Presence
    | PresenceBatch
    | Refreshed
    | UserList
    | Pong
    | RateLimit
    | Unknown
)

_TYPE_NAMES: dict[type, str] = {
    Welcome: "welcome",
    Message: "message",
    Ack: "ack",
    ErrorFrame: "error",
    Presence: "presence",
    PresenceBatch: "presence_batch",
    Refreshed: "refreshed",
    UserList: "who",
    Pong: "pong",
    RateLimit: "limits",
}
_TYPE_FIRST = re.compile(r'\{\s*"type"\s*:\s*"([a-z_]{1,32})"')


def type_name(frame: ServerFrame) -> str:
    """The ``type`` a parsed frame had on the wire."""
    return frame.type if isinstance(frame, Unknown) else _TYPE_NAMES[type(frame)]


def peek_type(data: str | bytes) -> str | None:
    """The ``type`` of a frame whose first key is ``type``, without decoding it; None when
    that is not how the frame starts (decode it with :func:`parse` to know)."""
    if isinstance(data, str):
        m = _TYPE_FIRST.match(data)
        if m is not None:
            return m[1]
    return None


def parse(data: str | bytes) -> ServerFrame:
    """Decode one server frame into its type; raise :class:`ProtocolError` if malformed."""
    return from_dict(parse_server_frame(data))


def from_dict(obj: dict[str, Any]) -> ServerFrame:
    """A decoded server frame (a dict with a string ``type``) as its type."""
    ftype = obj["type"]
    try:
        if ftype == "message":
            return Message.from_dict(obj)
        if ftype == "ack":
            return Ack(
                client_id=str(obj["client_id"]),
                id=int(obj["id"]),
                room=str(obj.get("room", "")),
                ts=float(obj.get("ts", 0.0)),
                duplicate=obj.get("duplicate") is True,
            )
        if ftype == "error":
            return _error(obj)
        if ftype == "presence":
            event = obj["event"]
            if event not in ("join", "leave"):
                raise ValueError(f"unknown presence event {event!r}")
            return Presence(str(obj["room"]), str(obj["user"]), event, float(obj["ts"]))
        if ftype == "presence_batch":
            return PresenceBatch(
                str(obj["room"]),
                tuple(str(u) for u in _list(obj, "joins")),
                tuple(str(u) for u in _list(obj, "leaves")),
                float(obj["ts"]),
            )
        if ftype == "welcome":
            return _welcome(obj)
        if ftype == "who":
            return UserList(str(obj.get("room", "")), [str(u) for u in _list(obj, "users")])
        if ftype == "pong":
            return Pong(obj.get("data"))
        if ftype == "limits":
            return RateLimit(_number(obj, "rate"), _number(obj, "burst"))
        if ftype == "refreshed":
            return Refreshed(str(obj["user"]), _number(obj, "exp"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, f"malformed {ftype} frame from the server: {exc}"
        ) from None
    return Unknown(ftype)


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise TypeError(f"{key} is not a list")
    return value


def _number(obj: dict[str, Any], key: str) -> float:
    value = obj[key]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{key} is not a number")
    return float(value)


def _error(obj: dict[str, Any]) -> ErrorFrame:
    code = str(obj.get("code", ""))
    reason = str(obj.get("reason") or code)
    client_id, retry_after = obj.get("client_id"), obj.get("retry_after")
    blocked_by = obj.get("blocked_by")
    try:
        known = ErrorCode(code)
    except ValueError:
        # A code this client does not know: not retryable, its reason shown as sent.
        known = ErrorCode.INVALID_FRAME
    return ErrorFrame(
        code=known,
        reason=reason,
        client_id=None if client_id is None else str(client_id),
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
        blocked_by=None if blocked_by is None else str(blocked_by),
    )


def _welcome(obj: dict[str, Any]) -> Welcome:
    limits = obj.get("limits")
    since, recovered = obj.get("since"), obj.get("recovered")
    count = obj.get("user_count")
    return Welcome(
        user=str(obj.get("user") or ""),
        room=str(obj.get("room", "")),
        epoch=str(obj.get("epoch", "")),
        last_id=int(obj.get("last_id") or 0),
        history=[
            Message.from_dict({"type": "message", **m})
            for m in _list(obj, "history")
            if isinstance(m, dict)
        ],
        users=[str(u) for u in _list(obj, "users")],
        since=since if isinstance(since, int) else None,
        recovered=recovered if isinstance(recovered, bool) else None,
        server=str(obj.get("server", "")),
        limits=limits if isinstance(limits, dict) else None,
        user_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
    )
