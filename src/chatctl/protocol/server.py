"""The frames only the server sends, each answering one connection: ``welcome``, ``ack``,
``error``, ``limits``, ``refreshed``, ``who``, ``pong`` and ``history`` (the room's frames are in
:mod:`chatctl.protocol.broadcast`), and :class:`Unknown` for a type a client does not know.

Every frame class has ``TYPE`` (its ``type`` on the wire), ``to_dict()``, ``frame()`` (the JSON
text) and ``from_dict()``, which raises ``KeyError``/``TypeError``/``ValueError`` when a field
is missing or of the wrong type (:func:`~chatctl.protocol.parse_server_frame` turns them into
:class:`~chatctl.protocol.ProtocolError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from chatctl.protocol.broadcast import Message, Presence, PresenceBatch
from chatctl.protocol.codec import dumps, list_field, number_field
from chatctl.protocol.direct import DmNotice
from chatctl.protocol.errors import ErrorCode, ProtocolError
from chatctl.protocol.rules import PROTOCOL_VERSION


@dataclass(frozen=True)
class Welcome:
    """First frame on every connection.

    ``last_id`` is the newest message id in the room when the connection subscribed (0 if none):
    everything after it arrives live. ``recovered`` is set only when the client asked to resume
    (``since``): True when ``history`` holds every message after ``since``; False when some
    were no longer kept (or the room's ``epoch`` changed), so the client knows it missed some.

    ``more`` (with ``recovered: false``): ``history`` was cut only to fit the connection's
    bound on pending output, and every message after ``since`` is still kept: the client
    pages back with ``history`` requests (``before`` = the first id it holds: the first of
    ``history``, or ``last_id + 1`` when ``history`` is empty) until it holds ``since + 1``,
    and has then recovered every message. Omitted on the wire when false.
    """

    TYPE: ClassVar[str] = "welcome"

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
    #: the messages between ``since`` and the first of ``history`` are still kept: page them
    more: bool = False

    @property
    def total_users(self) -> int:
        """Users in the room, whether or not ``users`` lists them all."""
        return len(self.users) if self.user_count is None else max(self.user_count, len(self.users))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.TYPE,
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
            if self.more:
                d["more"] = True
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Welcome:
        """Lenient, field by field: a missing optional field takes its default."""
        limits = d.get("limits")
        since, recovered = d.get("since"), d.get("recovered")
        count = d.get("user_count")
        return cls(
            user=str(d.get("user") or ""),
            room=str(d.get("room", "")),
            epoch=str(d.get("epoch", "")),
            last_id=int(d.get("last_id") or 0),
            history=[Message.from_dict(m) for m in list_field(d, "history") if isinstance(m, dict)],
            users=[str(u) for u in list_field(d, "users")],
            since=since if isinstance(since, int) else None,
            recovered=recovered if isinstance(recovered, bool) else None,
            server=str(d.get("server", "")),
            limits=limits if isinstance(limits, dict) else None,
            user_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            more=since is not None and d.get("more") is True,
        )


@dataclass(frozen=True)
class Ack:
    """The broker stored the message with client id ``client_id`` as ``id``.

    ``duplicate`` is true when this client id was seen before: the original ack is returned and
    the message is not delivered again.
    """

    TYPE: ClassVar[str] = "ack"

    client_id: str
    id: int
    room: str
    ts: float
    duplicate: bool = False
    #: the epoch ``id`` belongs to (absent when the broker does not say)
    epoch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.TYPE,
            "client_id": self.client_id,
            "id": self.id,
            "room": self.room,
            "ts": self.ts,
            "duplicate": self.duplicate,
        }
        if self.epoch is not None:
            d["epoch"] = self.epoch
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ack:
        return cls(
            client_id=str(d["client_id"]),
            id=int(d["id"]),
            room=str(d.get("room", "")),
            ts=float(d.get("ts", 0.0)),
            duplicate=d.get("duplicate") is True,
            epoch=str(d["epoch"]) if d.get("epoch") is not None else None,
        )


#: ``ErrorFrame.stored`` when a ``broker_unavailable`` refusal's message may have been stored
STORED_UNKNOWN = "unknown"


@dataclass(frozen=True)
class ErrorFrame:
    """A frame was refused (``code``, ``reason``); the connection stays open."""

    TYPE: ClassVar[str] = "error"

    code: ErrorCode
    reason: str
    client_id: str | None = None
    retry_after: float | None = None
    #: set when this message was refused only because an earlier message of the connection,
    #: the one with this client id, was refused and has not been sent again (see
    #: docs/protocol.md, "Order"): re-send from that one on, in order
    blocked_by: str | None = None
    #: ``"unknown"`` on a ``broker_unavailable`` refusal when the message may have been
    #: stored all the same (the store failed after the write was sent): re-send it with the
    #: same client id, which is acked (``duplicate`` if it was stored); absent: not stored
    stored: str | None = None

    @classmethod
    def of(cls, error: ProtocolError) -> ErrorFrame:
        """The error frame the server answers a broken rule with."""
        return cls(code=error.code, reason=error.reason, client_id=error.client_id)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.TYPE, "code": str(self.code), "reason": self.reason}
        if self.client_id is not None:
            d["client_id"] = self.client_id
        if self.retry_after is not None:
            d["retry_after"] = self.retry_after
        if self.blocked_by is not None:
            d["blocked_by"] = self.blocked_by
        if self.stored is not None:
            d["stored"] = self.stored
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorFrame:
        """A code this client does not know reads as ``invalid_frame``: not retryable, its
        reason shown as sent."""
        code = str(d.get("code", ""))
        client_id, retry_after, blocked_by = d.get("client_id"), d.get("retry_after"), None
        if d.get("blocked_by") is not None:
            blocked_by = str(d["blocked_by"])
        try:
            known = ErrorCode(code)
        except ValueError:
            known = ErrorCode.INVALID_FRAME
        return cls(
            code=known,
            reason=str(d.get("reason") or code),
            client_id=None if client_id is None else str(client_id),
            retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            blocked_by=blocked_by,
            stored=None if d.get("stored") is None else str(d["stored"]),
        )


@dataclass(frozen=True)
class RateLimit:
    """The frame rate a connection is held to: ``rate`` frames per second, bursts of up to
    ``burst``. Announced in the welcome (``limits``) and, when it changes, in a ``limits``
    frame (the user's connections on the node share the per-user budget)."""

    TYPE: ClassVar[str] = "limits"

    rate: float
    burst: float

    def figures(self) -> dict[str, float]:
        """The welcome's ``limits`` field."""
        return {"rate": self.rate, "burst": self.burst}

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "rate": self.rate, "burst": self.burst}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RateLimit:
        return cls(number_field(d, "rate"), number_field(d, "burst"))


@dataclass(frozen=True)
class Refreshed:
    """The server verified a ``refresh`` token: the connection now lives until ``exp``."""

    TYPE: ClassVar[str] = "refreshed"

    user: str
    exp: float

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "user": self.user, "exp": self.exp}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Refreshed:
        return cls(str(d["user"]), number_field(d, "exp"))


@dataclass(frozen=True)
class UserList:
    """The answer to a ``who`` request: every user in ``room``, sorted."""

    TYPE: ClassVar[str] = "who"

    room: str
    users: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "room": self.room, "users": self.users}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserList:
        return cls(str(d.get("room", "")), [str(u) for u in list_field(d, "users")])


@dataclass(frozen=True)
class Pong:
    """The answer to a ``ping``, with its ``data``."""

    TYPE: ClassVar[str] = "pong"

    data: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "data": self.data}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Pong:
        return cls(d.get("data"))


@dataclass(frozen=True)
class HistoryPage:
    """The answer to a ``history`` request: kept messages of ``room``, oldest first, every id
    below the request's ``before``; ``more`` is true when the server keeps messages older
    than the first of them (ask again with ``before`` = that first id)."""

    TYPE: ClassVar[str] = "history"

    room: str
    epoch: str
    messages: list[Message]
    more: bool
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.TYPE,
            "room": self.room,
            "epoch": self.epoch,
            "messages": [m.to_dict() for m in self.messages],
            "more": self.more,
        }
        if self.client_id is not None:
            d["client_id"] = self.client_id
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistoryPage:
        client_id = d.get("client_id")
        return cls(
            room=str(d.get("room", "")),
            epoch=str(d.get("epoch", "")),
            messages=[
                Message.from_dict(m) for m in list_field(d, "messages") if isinstance(m, dict)
            ],
            more=d.get("more") is True,
            client_id=None if client_id is None else str(client_id),
        )


@dataclass(frozen=True)
class Unknown:
    """A frame of a type this client does not know (a newer server): ignored by clients."""

    type: str


#: Every frame a server may send (a client reads any other type as :class:`Unknown`): the
#: frame table (:data:`~chatctl.protocol.SERVER_FRAMES`) is built from this list.
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
    | HistoryPage
    | DmNotice
)
