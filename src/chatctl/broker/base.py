"""The broker contract: what the server needs from whatever stores and fans out messages.

A broker owns, per room: the id counter, the history log, de-duplication of client ids,
presence, and the node-level live subscription. The server owns connections. Every broker
(memory, sqlite, redis) passes the one conformance suite in tests/broker/test_conformance.py.

Guarantees every implementation gives:

- ``publish`` returns only after the message is stored; ids are per room, strictly
  increasing, starting at 1. A repeated ``(room, user, client_id)`` within the
  de-duplication window returns the original message with ``duplicate=True`` and is not
  delivered again.
- ``subscribe`` registers ONE callback per room per node; the broker calls it for every
  message of the room in id order, each exactly once per subscription (a Redis broker
  catches up from its log after an outage), and for presence changes; when the room's
  history was lost and ids restart, it first delivers a :class:`Reset`; when messages were
  trimmed from its log before it could deliver them (a Redis node cut off while other nodes
  published more than ``--history``), it delivers a :class:`Gap` before the first message
  after the hole (the memory and SQLite brokers deliver in the process that stores, so they
  never do). Live delivery
  may lag behind ``history`` (a Redis feed catches up after an outage while publishes and
  reads already work): the server's hub merges a welcome's history with the live messages
  by id, so that a connection whose welcome is ahead gets nothing twice.
- A broker may also be a :class:`PipelinedBroker`: its ``publish_nowait`` queues a publish
  and calls back when it is stored or refused, and publishes queued one after another are
  stored, answered and delivered in the order they were queued; the server then lets one
  connection's publishes overlap (the SQLite broker commits them together) without a task
  or a future per message. Without it, the server awaits each publish in turn.
  A pipelined broker also promises: once a publish fails with ``BrokerUnavailable``, every
  publish made after it and before that failure was delivered to its caller fails too
  (nothing queued behind a failed write is stored), so the server's order gate never finds
  a later message of a connection stored ahead of a refused one.
- ``history(since=N)`` returns the kept messages with ``id > N`` and says whether they are
  complete, i.e. nothing after ``N`` was trimmed away; ``before=B`` bounds the ids from above
  (``id < B``), for paging backwards: the newest ``limit`` of those, oldest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from chatctl.protocol import Message, MessageKind, Presence
from chatctl.protocol.moderation import Moderation, Sanction
from chatctl.tokens.revocation import Revocation

#: Default history TTL (``--history-ttl``): a week, so a team's history survives a weekend or
#: a holiday, while a room nobody uses is forgotten (docs/deploy.md, "Retention"). With a TTL,
#: messages older than it leave the history, and a room without members and without a message
#: within it is forgotten entirely (its next use starts a new epoch); 0 keeps everything.
DEFAULT_HISTORY_TTL = 7 * 86400.0


@dataclass(frozen=True)
class Reset:
    """The room's history was lost in the backing store (e.g. a Redis without persistence
    restarted): ids start again from 1 under a new ``epoch``. Delivered before the first
    message of the new epoch; the server closes the room's connections with 1012 so that
    every client resumes and learns from its welcome that it was not recovered."""

    room: str
    epoch: str | None


@dataclass(frozen=True)
class Gap:
    """Messages ``after_id + 1`` to ``next_id - 1`` of the room were trimmed from the store
    before this node's live feed could deliver them (a Redis node whose pub/sub connection
    was down while other nodes published more than the stream keeps). Delivered before
    message ``next_id``; the server closes the room's connections that had not got them
    with 1012, so that every client resumes and learns from its welcome that it was not
    recovered, instead of seeing ids jump."""

    room: str
    after_id: int
    next_id: int


#: Called by the broker, on the event loop, for each live message, presence change, reset or
#: gap.
Deliver = Callable[[Message | Presence | Reset | Gap], None]


@dataclass(frozen=True)
class PublishResult:
    message: Message
    duplicate: bool = False
    #: the epoch the message's id belongs to: a room whose history was lost since the
    #: sender's welcome (a Redis without persistence restarted, an idle room forgotten)
    #: numbers from 1 again under a new epoch, and the ack says so (None: not known)
    epoch: str | None = None


#: Called by a :class:`PipelinedBroker`, on the event loop, once per queued publish: with the
#: result when it is stored, or with the error (``BrokerUnavailable``: not stored, retry).
PublishDone = Callable[[PublishResult | None, Exception | None], None]


@dataclass(frozen=True)
class History:
    """Messages of a room, oldest first.

    ``last_id`` is the newest id in the room (0 when empty); ``complete`` is true when
    ``messages`` holds every message after the ``since`` asked for (and below ``before``;
    always true without ``since``); ``epoch`` changes whenever the room's history was lost
    and ids restarted.
    """

    messages: list[Message]
    last_id: int
    epoch: str
    complete: bool = True


@runtime_checkable
class Broker(Protocol):
    """The interface the server talks to. See the module docstring for the guarantees."""

    async def start(self) -> None:
        """Connect and start background work. Called once before anything else."""

    async def close(self) -> None:
        """Stop background work and release connections."""

    async def publish(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
        display: str | None = None,
    ) -> PublishResult:
        """Store and fan out a message; raise ``BrokerUnavailable`` if it was not stored, or
        its subclass ``BrokerOutcomeUnknown`` if the store failed after the write may have
        run and the broker could not learn the outcome in time (maybe stored). ``display``
        (a name shown with ``user``, already cleaned) is kept with the message; the server
        passes it only when there is one."""
        ...

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        """Start delivering the room's live messages and presence changes to ``deliver``."""

    async def unsubscribe(self, room: str) -> None:
        """Stop delivering the room's events to this node."""

    async def history(
        self, room: str, *, since: int | None, limit: int, before: int | None = None
    ) -> History:
        """Up to ``limit`` newest kept messages after ``since`` (or the newest ``limit`` ones)
        with an id below ``before`` (when given); ``complete`` then says whether every one
        between ``since`` and ``before`` is still kept."""
        ...

    async def join(self, room: str, user: str, conn_id: str) -> None:
        """Record a connection of ``user`` in ``room``; the first one announces a join."""

    async def leave(self, room: str, user: str, conn_id: str) -> None:
        """Forget a connection; the user's last one announces a leave."""

    async def users(self, room: str) -> list[str]:
        """Users with at least one connection in the room, on any node, sorted."""
        ...

    def healthy(self) -> bool:
        """True when publishing and live delivery both work right now."""
        ...


@runtime_checkable
class PipelinedBroker(Broker, Protocol):
    """A broker whose publishes may overlap: see the module docstring."""

    def publish_nowait(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
        display: str | None = None,
        done: PublishDone,
    ) -> None:
        """Queue a publish; ``done(result, None)`` once it is stored, ``done(None, error)``
        if it is not. ``done`` is called on the loop, never before this returns, and in the
        order of the calls; it must not raise."""


# What a broker may also offer, each a capability the server checks with isinstance (never
# by class name): the log line at start and the gauges of /metrics read them.


@runtime_checkable
class KeptInFile(Protocol):
    """A broker whose rooms are in one file on this host (the SQLite broker)."""

    @property
    def path(self) -> Path:
        """The database file."""
        ...


@runtime_checkable
class CountsRooms(Protocol):
    """A broker holding rooms in this process's memory (``chatctl_broker_rooms``)."""

    @property
    def rooms(self) -> int:
        """Rooms held in memory now (retention frees idle ones)."""
        ...


@runtime_checkable
class CountsReconnects(Protocol):
    """A broker with a connection to a service (``chatctl_broker_reconnects_total``)."""

    @property
    def reconnects(self) -> int:
        """Times it re-established its connection (or subscription) after losing it."""
        ...


@runtime_checkable
class Revocations(Protocol):
    """A broker that keeps revoked tokens where every node reads them and where ``chatctl
    token revoke`` on the server's host writes them (SQLite: a table of its file; Redis:
    shared keys). The server polls :meth:`revocations` (every 0.5 s) and closes the
    connections of a token revoked meanwhile. Without it (the memory broker) a server keeps
    the revocations it is told of (``POST /api/revoke``) in its own memory."""

    async def revoke(self, entry: Revocation) -> None:
        """Store ``entry`` until its ``exp`` (a user's later cut-off replaces an earlier
        one); raise ``BrokerUnavailable`` when it is not stored."""

    async def revocations(self, seen: str) -> tuple[str, list[Revocation] | None]:
        """The store's version, and every entry not yet expired when that version differs
        from ``seen`` (None when nothing changed: a cheap read). Raises
        ``BrokerUnavailable``."""


@runtime_checkable
class PeeksRooms(Protocol):
    """A broker that tells a room's newest id without reading the room into memory or
    creating it (a server asks this of every user's inbox at connect: most are empty)."""

    async def last_id(self, room: str) -> int:
        """The newest id of ``room`` (0 if it has none or does not exist)."""
        ...


@runtime_checkable
class ListsRooms(Protocol):
    """A broker shared by several nodes that knows which rooms have members on any of them
    (``GET /rooms`` lists those, not only the rooms of this node)."""

    async def member_rooms(self) -> list[str]:
        """Rooms with members on some node, sorted; a room may stay listed for a while
        after its last member left (its user count says so)."""
        ...


@dataclass(frozen=True)
class SanctionEntry:
    """A ``mute`` or ``ban`` of ``user`` in a room, by moderator ``by``, until the Unix time
    ``until`` (None: a ban until ``unban``)."""

    user: str
    kind: Sanction
    until: float | None
    reason: str | None
    by: str

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def to_dict(self) -> dict[str, object]:
        return {
            "user": self.user,
            "kind": self.kind,
            "until": self.until,
            "reason": self.reason,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> SanctionEntry:
        """From :meth:`to_dict`'s object; ``ValueError`` if malformed."""
        kind, until, reason = d.get("kind"), d.get("until"), d.get("reason")
        if kind not in ("mute", "ban"):
            raise ValueError(f"not a sanction kind: {kind!r}")
        if until is not None and not isinstance(until, int | float):
            raise ValueError("a sanction's until must be a number")
        return cls(
            str(d["user"]),
            kind,
            None if until is None else float(until),
            None if reason is None else str(reason),
            str(d["by"]),
        )


@runtime_checkable
class Moderates(Protocol):
    """A broker that keeps a room's sanctions (mutes, bans) where every node reads them and
    a restart keeps them (memory: the process's life), and deletes messages: their history
    then serves :meth:`~chatctl.protocol.Message.tombstone` (docs/protocol.md,
    "Moderation"). Every method raises ``BrokerUnavailable`` when the store fails.

    Its ``publish`` also takes ``moderation``: a moderation announcement's record (with
    ``kind="moderation"``), kept with the message and returned by ``history`` (a keyword of
    this capability, not of :class:`Broker`: a broker without moderation needs no change)."""

    async def publish(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
        display: str | None = None,
        moderation: Moderation | None = None,
    ) -> PublishResult: ...

    async def set_sanction(self, room: str, entry: SanctionEntry) -> None:
        """Store ``entry`` (replacing the user's sanction of that kind in the room)."""

    async def lift_sanction(self, room: str, user: str, kind: Sanction) -> bool:
        """Remove the user's sanction of ``kind``; False when there was none in force."""
        ...

    async def sanctions(self, room: str) -> list[SanctionEntry]:
        """The room's sanctions in force (an expired one is never returned)."""
        ...

    async def message(self, room: str, id: int) -> Message | None:
        """Message ``id`` of the room if it is kept and not deleted, else None."""
        ...

    async def delete_message(self, room: str, id: int) -> bool:
        """Make message ``id`` a tombstone (history serves it with no text, ``deleted``);
        False when it is not kept or already deleted."""
        ...
