"""The frames a server fans out to a room, which brokers also store and carry: ``message``
and ``presence``/``presence_batch``. Each encodes itself once (``frame``, cached) and the
encoding is shared by every delivery: this is the server's hot path."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

from chatctl.protocol.codec import ENCODER, dumps, list_field
from chatctl.protocol.moderation import Moderation
from chatctl.protocol.rules import clean_display

#: ``text`` and ``action`` (``/me``) come from clients; ``moderation`` only from the server
#: (an announcement: :class:`~chatctl.protocol.moderation.Moderation`)
MessageKind = Literal["text", "action", "moderation"]
_KINDS: dict[object, MessageKind] = {"action": "action", "moderation": "moderation"}


@dataclass(frozen=True, slots=False)
class Message:
    """A stored chat message: what ``message`` frames and history carry.

    ``id`` is room-scoped and strictly increasing; ``ts`` is the server's Unix time in seconds.
    The serialised frame is computed once and shared by every delivery.
    """

    TYPE: ClassVar[str] = "message"

    id: int
    room: str
    user: str
    text: str
    ts: float
    kind: MessageKind = "text"
    client_id: str | None = None
    #: a name shown with ``user`` (never instead of it): a webhook's Slack ``username``, when
    #: its token allows one; cleaned by :func:`~chatctl.protocol.rules.clean_display`
    display: str | None = None
    #: what a ``moderation`` message reports (None for every other kind)
    moderation: Moderation | None = None
    #: a tombstone: the message was deleted (``text`` is empty; id, user and time remain)
    deleted: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "type": self.TYPE,
            "id": self.id,
            "room": self.room,
            "user": self.user,
            "message": self.text,
            "ts": self.ts,
            "kind": self.kind,
        }
        if self.client_id is not None:
            d["client_id"] = self.client_id
        if self.display is not None:
            d["display"] = self.display
        if self.moderation is not None:
            d["moderation"] = self.moderation.to_dict()
        if self.deleted:
            d["deleted"] = True
        return d

    def tombstone(self) -> Message:
        """This message as history serves it once deleted: no text, ``deleted``."""
        return Message(
            self.id,
            self.room,
            self.user,
            "",
            self.ts,
            self.kind,
            self.client_id,
            self.display,
            self.moderation,
            deleted=True,
        )

    @property
    def sender(self) -> str:
        """Who every client shows: ``user``, or ``DISPLAY (via USER)`` (a display name never
        hides the user, and holds no bracket to fake one)."""
        return self.user if self.display is None else f"{self.display} (via {self.user})"

    @cached_property
    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        """Build from a ``message`` frame or a stored record; raise ``ValueError`` if malformed."""
        try:
            kind = _KINDS.get(d.get("kind", "text"), "text")
            client_id = d.get("client_id")
            moderation = d.get("moderation")
            msg = cls(
                id=int(d["id"]),
                room=str(d["room"]),
                user=str(d["user"]),
                text=str(d["message"]),
                ts=float(d["ts"]),
                kind=kind,
                client_id=None if client_id is None else str(client_id),
                display=clean_display(d.get("display")),
                moderation=None if moderation is None else Moderation.from_dict(moderation),
                deleted=d.get("deleted") is True,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a message record: {exc}") from exc
        return msg


PresenceEvent = Literal["join", "leave"]


@dataclass(frozen=True)
class Presence:
    """``user`` joined or left ``room`` (first connection in / last connection out)."""

    room: str
    user: str
    event: PresenceEvent
    ts: float

    TYPE: ClassVar[str] = "presence"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "event": self.event,
            "room": self.room,
            "user": self.user,
            "ts": self.ts,
        }

    @cached_property
    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Presence:
        event = d["event"]
        if event not in ("join", "leave"):
            raise ValueError(f"unknown presence event {event!r}")
        return cls(str(d["room"]), str(d["user"]), event, float(d["ts"]))


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

    TYPE: ClassVar[str] = "presence_batch"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "room": self.room,
            "joins": list(self.joins),
            "leaves": list(self.leaves),
            "ts": self.ts,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PresenceBatch:
        return cls(
            str(d["room"]),
            tuple(str(u) for u in list_field(d, "joins")),
            tuple(str(u) for u in list_field(d, "leaves")),
            float(d["ts"]),
        )

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
        head = dumps({"type": self.TYPE, "room": self.room})[:-1] + ',"joins":['
        tail = "]," + dumps({"leaves": list(self.leaves), "ts": self.ts})[1:]
        return head, [ENCODER.encode(u) for u in self.joins], tail

    @cached_property
    def _join_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.joins)}
