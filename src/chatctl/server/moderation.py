"""What one node knows of the rooms' sanctions, and how it carries out a moderation.

The state is the broker's (:class:`~chatctl.broker.base.Moderates`): every node reads it
and a restart keeps it. Each node keeps a cache per room, :class:`RoomSanctions`:

- a room live on the node (the hub subscribed to it) is loaded once, after subscribing, and
  then kept current by the room's own ``moderation`` messages, which every subscribed node
  receives in order (:meth:`Sanctions.apply`, called by the hub's delivery). A ``kick`` or
  ``ban`` also closes the target's connections to the room on this node, with 4003 or 4004
  and a reason; so a moderation on one node acts on every node with no channel of its own;
- a room that is not live (a write-only connection's, the HTTP API's) is read again once
  its copy is :data:`STALE_AFTER` seconds old.

The checks on the hot path (a message from a muted user; a handshake of a banned one) are
one dict lookup when the room has no sanctions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import Broker, Moderates, SanctionEntry
from chatctl.protocol import CloseCode, Message
from chatctl.protocol.moderation import format_duration
from chatctl.server import wire

log = logging.getLogger("chatctl.server")

#: Seconds a room's sanctions read from the broker are used for a room that is not live on
#: this node (live rooms are kept current by their moderation messages).
STALE_AFTER = 1.0
#: Rooms not live on the node whose copies are kept before the stale ones are dropped.
MAX_COLD_ROOMS = 1024
#: Seconds a kicked or banned connection's close frame gets before it is aborted.
CLOSE_GRACE = 2.0
#: The longest close reason a WebSocket close frame carries, in UTF-8 bytes.
MAX_CLOSE_REASON = 123


def when(until: float, now: float) -> str:
    """``14:05 UTC (10m left)``; a date too when it is a day or more away."""
    shape = "%H:%M UTC" if until - now < 86400 else "%Y-%m-%d %H:%M UTC"
    return (
        f"{time.strftime(shape, time.gmtime(until))} ({format_duration(max(until - now, 1))} left)"
    )


def refusal(room: str, entry: SanctionEntry, now: float) -> str:
    """Why ``entry`` refuses its user: ``muted in general by alice until 14:05 UTC (10m
    left): spam`` or ``banned from general by alice: spam`` (a ban until unbanned)."""
    head = f"muted in {room}" if entry.kind == "mute" else f"banned from {room}"
    text = f"{head} by {entry.by}"
    if entry.until is not None:
        text += f" until {when(entry.until, now)}"
    return f"{text}: {entry.reason}" if entry.reason else text


def close_reason(text: str) -> str:
    """``text`` cut to fit a close frame (:data:`MAX_CLOSE_REASON` bytes of UTF-8)."""
    data = text.encode()
    if len(data) <= MAX_CLOSE_REASON:
        return text
    return data[: MAX_CLOSE_REASON - 3].decode(errors="ignore") + "..."


@dataclass(eq=False)
class RoomSanctions:
    """One room's sanctions in force, as this node knows them."""

    mutes: dict[str, SanctionEntry] = field(default_factory=dict)
    bans: dict[str, SanctionEntry] = field(default_factory=dict)
    #: kept current by the room's messages (the hub is subscribed to it)
    live: bool = False
    #: monotonic time it was read from the broker
    read_at: float = 0.0

    def fresh(self) -> bool:
        return self.live or time.monotonic() - self.read_at < STALE_AFTER

    def muted(self, user: str, now: float) -> SanctionEntry | None:
        entry = self.mutes.get(user) if self.mutes else None
        return entry if entry is not None and entry.active(now) else None

    def banned(self, user: str, now: float) -> SanctionEntry | None:
        entry = self.bans.get(user) if self.bans else None
        return entry if entry is not None and entry.active(now) else None

    def take(self, entries: list[SanctionEntry]) -> None:
        self.mutes = {e.user: e for e in entries if e.kind == "mute"}
        self.bans = {e.user: e for e in entries if e.kind == "ban"}
        self.read_at = time.monotonic()


class Sanctions:
    """The node's sanctions per room, and the connections per room and user that a kick or
    a ban closes (every connection of the node, write-only ones too)."""

    def __init__(self, broker: Broker) -> None:
        #: the broker's moderation store (None: a broker without one moderates nothing)
        self.store: Moderates | None = broker if isinstance(broker, Moderates) else None
        self.rooms: dict[str, RoomSanctions] = {}
        #: room -> user -> the user's connections to it on this node (a list: most users
        #: have one, and a one-item list is a third of a set's size)
        self.occupants: dict[str, dict[str, list[ServerConnection]]] = {}
        #: action -> moderations carried out through this node
        self.actions: dict[str, int] = {}

    # ------------------------------------------------------------------ connections

    def enter(self, room: str, user: str, conn: ServerConnection) -> None:
        self.occupants.setdefault(room, {}).setdefault(user, []).append(conn)

    def leave(self, room: str, user: str, conn: ServerConnection) -> None:
        users = self.occupants.get(room)
        if users is None:
            return
        conns = users.get(user)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del users[user]
                if not users:
                    del self.occupants[room]

    # ------------------------------------------------------------------ state

    def cached(self, room: str) -> RoomSanctions | None:
        """The room's sanctions if this node's copy is current, else None (then
        :meth:`of`)."""
        rs = self.rooms.get(room)
        return rs if rs is not None and rs.fresh() else None

    async def of(self, room: str) -> RoomSanctions:
        """The room's sanctions, read from the broker unless the copy is current. Raises
        ``BrokerError``."""
        rs = self.cached(room)
        if rs is not None:
            return rs
        rs = self.rooms.get(room)
        if rs is None:
            if len(self.rooms) >= MAX_COLD_ROOMS:
                self._drop_stale()
            rs = RoomSanctions()
        if self.store is not None:
            rs.take(await self.store.sanctions(room))
        else:
            rs.read_at = time.monotonic()
        self.rooms[room] = rs
        return rs

    def _drop_stale(self) -> None:
        """Forget the copies of rooms not live here that are stale (read again if needed)."""
        for name in [n for n, rs in self.rooms.items() if not rs.fresh()]:
            del self.rooms[name]

    async def watch(self, room: str) -> None:
        """The hub subscribed to ``room``: read its sanctions, then keep them current from
        its messages. Raises ``BrokerError``."""
        rs = self.rooms.get(room)
        if rs is None:
            rs = self.rooms[room] = RoomSanctions()
        rs.live = True
        if self.store is not None:
            rs.take(await self.store.sanctions(room))

    async def refuses(self, room: str, user: str, *, writing: bool) -> SanctionEntry | None:
        """The ban (or, ``writing``, the mute) that refuses ``user`` in ``room`` now, if
        any (the HTTP API's checks). Raises ``BrokerError``."""
        if room.startswith("+"):
            return None  # a conversation has no moderation
        copy = self.cached(room) or await self.of(room)
        if not (copy.bans or (writing and copy.mutes)):
            return None
        now = time.time()
        return copy.banned(user, now) or (copy.muted(user, now) if writing else None)

    def unwatch(self, room: str) -> None:
        """The hub left ``room``: its copy is read again when next needed."""
        self.rooms.pop(room, None)

    def apply(self, msg: Message) -> None:
        """A ``moderation`` message of the room: update the copy; close the connections of a
        kicked or banned user on this node."""
        record = msg.moderation
        if record is None:
            return
        room, target, by = msg.room, record.target, msg.user
        rs = self.rooms.get(room)
        action = record.action
        if rs is not None:
            if action in ("mute", "ban"):
                entry = SanctionEntry(target, action, record.until, record.reason, by)
                (rs.mutes if action == "mute" else rs.bans)[target] = entry
            elif action == "unmute":
                rs.mutes.pop(target, None)
            elif action == "unban":
                rs.bans.pop(target, None)
        if action == "kick":
            text = f"kicked by {by}"
            self._close(room, target, CloseCode.KICKED, text, record.reason)
        elif action == "ban":
            text = f"banned by {by}"
            if record.until is not None:
                text += f" until {when(record.until, time.time())}"
            self._close(room, target, CloseCode.BANNED, text, record.reason)

    def _close(self, room: str, user: str, code: int, text: str, reason: str | None) -> None:
        conns = self.occupants.get(room, {}).get(user)
        if not conns:
            return
        why = close_reason(f"{text}: {reason}" if reason else text)
        closed = sum(wire.close_now(c, code, why, grace=CLOSE_GRACE) for c in list(conns))
        if closed:
            log.info(
                "closed %d connections of user=%s room=%s with %d: %s",
                closed,
                user,
                room,
                code,
                why,
            )
