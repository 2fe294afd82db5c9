"""The frames a client sends: ``message``, ``who``, ``ping``, ``refresh`` and ``history``
(and ``moderate`` and ``delete``, in :mod:`~chatctl.protocol.moderation`).

Any of them may carry a ``client_id`` (1-64 characters); ``from_dict`` checks it first.

Every frame class has ``TYPE`` (its ``type`` on the wire), ``to_dict()``, ``frame()`` (the JSON
text) and ``from_dict(d, max_chars=...)``, which validates a decoded frame and raises
:class:`~chatctl.protocol.ProtocolError` with the code the server answers with
(:func:`~chatctl.protocol.parse_client_frame` is the whole server-side read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from chatctl.protocol.broadcast import MessageKind
from chatctl.protocol.codec import dumps
from chatctl.protocol.errors import ErrorCode, ProtocolError
from chatctl.protocol.moderation import Delete, Moderate
from chatctl.protocol.rules import (
    DEFAULT_HISTORY_PAGE,
    MAX_CLIENT_ID_CHARS,
    MAX_HISTORY_PAGE,
    MAX_MESSAGE_CHARS,
    is_blank,
)


def client_id_of(d: dict[str, Any]) -> str | None:
    """The frame's ``client_id``, checked: a string of 1-64 characters, or absent."""
    client_id = d.get("client_id")
    if client_id is not None and (
        not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID_CHARS
    ):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            f"client_id must be a string of 1-{MAX_CLIENT_ID_CHARS} characters",
        )
    return client_id


@dataclass(frozen=True)
class SendMessage:
    """A chat message from a client. ``client_id`` asks for an ack and de-duplication."""

    TYPE: ClassVar[str] = "message"

    text: str
    client_id: str | None = None
    kind: MessageKind = "text"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.TYPE, "message": self.text}
        if self.client_id is not None:
            d["client_id"] = self.client_id
        if self.kind != "text":
            d["kind"] = self.kind
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, max_chars: int = MAX_MESSAGE_CHARS) -> SendMessage:
        client_id = client_id_of(d)
        if "message" not in d:
            raise ProtocolError(
                ErrorCode.MISSING_FIELD, "missing field: message", client_id=client_id
            )
        text = d["message"]
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
        kind = d.get("kind", "text")
        if kind not in ("text", "action"):
            raise ProtocolError(
                ErrorCode.INVALID_FIELD, "kind must be 'text' or 'action'", client_id=client_id
            )
        return cls(text=text, client_id=client_id, kind=kind)


@dataclass(frozen=True)
class Who:
    """Ask for the room's user list (answered by a ``who`` frame, :class:`UserList`)."""

    TYPE: ClassVar[str] = "who"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, max_chars: int = MAX_MESSAGE_CHARS) -> Who:
        client_id_of(d)
        return cls()


@dataclass(frozen=True)
class Ping:
    """Application-level ping, answered by ``pong`` with the same ``data``."""

    TYPE: ClassVar[str] = "ping"

    data: Any = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "data": self.data}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, max_chars: int = MAX_MESSAGE_CHARS) -> Ping:
        client_id_of(d)
        return cls(d.get("data"))


@dataclass(frozen=True)
class Refresh:
    """A fresh token for this connection, sent before the current one expires (answered by
    ``refreshed``, or an ``invalid_token``/``forbidden`` error)."""

    TYPE: ClassVar[str] = "refresh"

    token: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "token": self.token}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, max_chars: int = MAX_MESSAGE_CHARS) -> Refresh:
        client_id_of(d)
        token = d.get("token")
        if token is None:
            raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field: token")
        if not isinstance(token, str) or not token:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "token must be a non-empty string")
        return cls(token)


@dataclass(frozen=True)
class HistoryRequest:
    """Ask for older messages of the connection's room: the newest ``limit`` kept messages
    with an id below ``before`` (below none: the newest), answered by a ``history`` frame
    (:class:`~chatctl.protocol.server.HistoryPage`) that echoes ``client_id``.

    ``limit`` is 1 or more; a larger one than :data:`MAX_HISTORY_PAGE` is read as that."""

    TYPE: ClassVar[str] = "history"

    before: int | None = None
    limit: int = DEFAULT_HISTORY_PAGE
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.TYPE}
        if self.before is not None:
            d["before"] = self.before
        d["limit"] = self.limit
        if self.client_id is not None:
            d["client_id"] = self.client_id
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, max_chars: int = MAX_MESSAGE_CHARS) -> HistoryRequest:
        client_id = client_id_of(d)
        before = d.get("before")
        if before is not None and (not _is_int(before) or before < 1):
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                "before must be a message id (an integer of 1 or more)",
                client_id=client_id,
            )
        limit = d.get("limit", DEFAULT_HISTORY_PAGE)
        if not _is_int(limit) or limit < 1:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"limit must be an integer from 1 to {MAX_HISTORY_PAGE}",
                client_id=client_id,
            )
        return cls(before, min(limit, MAX_HISTORY_PAGE), client_id)


def _is_int(value: object) -> bool:
    """An integer as JSON has it: not a bool, not a float such as 2.0."""
    return isinstance(value, int) and not isinstance(value, bool)


#: Every frame a client may send: the frame table (:data:`~chatctl.protocol.CLIENT_FRAMES`)
#: is built from this list.
ClientFrame = SendMessage | Who | Ping | Refresh | HistoryRequest | Moderate | Delete
