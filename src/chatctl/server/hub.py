"""Local fan-out: the connections of this process, grouped by room.

The hub holds ONE broker subscription per room that has local members, however many
connections the room has. A connection is attached as soon as its handshake is accepted
(before the 101 response is sent), so nothing published after that point can miss it;
until its welcome is written, live events are kept aside for it and then flushed, skipping
messages the welcome's history already carried.

Fan-out writes each frame, encoded once, to every member without awaiting anyone
(:func:`chatctl.server.wire.broadcast`): a slow or stalled client never delays the others.
A member whose pending output passes ``max_pending`` bytes is disconnected with close code
4008 (slow consumer).

Presence is throttled per room: a change in a room that had none for a tick goes out at
once, as a ``presence`` frame; the changes that come within the next tick are coalesced into
one frame (``presence_batch`` when there are several) sent when it ends, or before the
room's next message if that comes first (presence is never reordered with messages: a
user's join still comes before their first message). The tick grows with
the room (:func:`presence_tick`), so presence costs a room at most about
``1 / PRESENCE_TICK_PER_MEMBER`` deliveries per second whatever its size, and a join storm of
N users O(N) frames in all instead of N per join.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import Broker, Reset
from chatctl.protocol import CloseCode, Message, Presence, PresenceBatch, PresenceEvent
from chatctl.server import wire
from chatctl.server.metrics import Counters

log = logging.getLogger("chatctl.server")

#: Seconds a slow consumer's or an abuser's close frame gets before its TCP connection is
#: aborted (see :func:`chatctl.server.wire.close_now`).
CLOSE_GRACE = 2.0

#: Shortest presence tick: at most one presence frame per room per tick (a quiet room's first
#: change goes out at once and opens a tick).
PRESENCE_TICK = 0.1
#: Seconds of presence tick per member of the room (0.5 ms: 1 s for 2,000 members)...
PRESENCE_TICK_PER_MEMBER = 0.0005
#: ...up to this many seconds.
MAX_PRESENCE_TICK = 2.0

Event = Message | Presence | PresenceBatch


def presence_tick(members: int) -> float:
    """Seconds between two presence frames of a room of ``members`` local connections."""
    return min(MAX_PRESENCE_TICK, max(PRESENCE_TICK, members * PRESENCE_TICK_PER_MEMBER))


@dataclass(eq=False)
class RoomMembers:
    name: str
    ready: set[ServerConnection] = field(default_factory=set)
    #: connections whose welcome is not written yet -> the events they must still get
    waiting: dict[ServerConnection, list[Event]] = field(default_factory=dict)
    last_id: int = 0
    #: presence changes of the current tick not sent yet: user -> its net change
    presence: dict[str, PresenceEvent] = field(default_factory=dict)
    presence_ts: float = 0.0
    #: ends the current presence tick; None when no tick is running
    presence_timer: asyncio.TimerHandle | None = None
    #: connections made ready during the current tick -> their user
    fresh: dict[ServerConnection, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ready) + len(self.waiting)


class Hub:
    def __init__(
        self,
        broker: Broker,
        *,
        max_pending: int,
        counters: Counters,
        observe_fanout: Callable[[float], None] | None = None,
    ) -> None:
        self.broker = broker
        self.max_pending = max_pending
        self.counters = counters
        #: called with the seconds each fan-out call took (the fan-out latency histogram)
        self.observe_fanout = observe_fanout
        self.rooms: dict[str, RoomMembers] = {}
        self._lock = asyncio.Lock()

    @property
    def connections(self) -> int:
        return sum(len(r) for r in self.rooms.values())

    async def attach(self, room: str, conn: ServerConnection) -> None:
        """Subscribe ``conn`` to ``room``; live events are kept for it until :meth:`ready`."""
        async with self._lock:
            members = self.rooms.get(room)
            if members is None:
                members = RoomMembers(room)
                await self.broker.subscribe(room, lambda event: self._fanout(members, event))
                self.rooms[room] = members
            members.waiting[conn] = []

    def ready(self, room: str, conn: ServerConnection, after_id: int, user: str) -> None:
        """The welcome (with history up to ``after_id`` and ``user`` in its user list) is
        written: flush what came since, minus what the welcome already said."""
        members = self.rooms[room]
        for event in members.waiting.pop(conn, ()):
            if isinstance(event, Message):
                if event.id > after_id:
                    self.write(conn, event.frame.encode())
            elif (news := _frame_for(user, event)) is not None:
                self.write(conn, news.encode())
        members.ready.add(conn)
        if members.presence_timer is not None:
            # the presence held for this tick may hold the user's own join: see
            # _send_held_presence
            members.fresh[conn] = user

    async def detach(self, room: str, conn: ServerConnection) -> None:
        async with self._lock:
            members = self.rooms.get(room)
            if members is None:
                return
            members.ready.discard(conn)
            members.waiting.pop(conn, None)
            members.fresh.pop(conn, None)
            if not members:
                del self.rooms[room]
                if members.presence_timer is not None:
                    members.presence_timer.cancel()
                await self.broker.unsubscribe(room)

    def _fanout(self, members: RoomMembers, event: object) -> None:
        """The broker's callback: one event of the room, whatever its type."""
        match event:
            case Presence() if members.presence_timer is not None:
                self._hold_presence(members, event)
            case Presence():
                self._open_presence_tick(members)
                self._timed_deliver(members, event)
            case Message():
                if members.presence:  # what happened before the message is told before it
                    self._send_held_presence(members)
                self._timed_deliver(members, event)
            case Reset():
                self._reset(members, event)
            case _:  # a broker newer than this server: its clients would not know it either
                log.warning("room %s: ignoring an unknown broker event %r", members.name, event)

    def _timed_deliver(self, members: RoomMembers, event: Event) -> None:
        if self.observe_fanout is None:
            self._deliver(members, event)
            return
        started = time.perf_counter()
        self._deliver(members, event)
        self.observe_fanout(time.perf_counter() - started)

    def _open_presence_tick(self, members: RoomMembers) -> None:
        members.presence_timer = asyncio.get_running_loop().call_later(
            presence_tick(len(members)), self._end_presence_tick, members
        )

    def _hold_presence(self, members: RoomMembers, event: Presence) -> None:
        """Keep a change for the end of the tick; a user's second change within the tick
        cancels the first (join + leave or leave + join: nothing changed for the others)."""
        if members.presence.pop(event.user, None) is None:
            members.presence[event.user] = event.event
        members.presence_ts = event.ts

    def _end_presence_tick(self, members: RoomMembers) -> None:
        """Send what the tick gathered, as one frame, and open the next tick; with nothing
        gathered, the room is quiet again and its next change goes out at once."""
        if not members.presence or self.rooms.get(members.name) is not members:
            members.presence_timer = None
            members.fresh.clear()
            return
        self._open_presence_tick(members)
        self._send_held_presence(members)

    def _send_held_presence(self, members: RoomMembers) -> None:
        changes, members.presence = members.presence, {}
        event: Presence | PresenceBatch
        if len(changes) == 1:
            [(user, change)] = changes.items()
            event = Presence(members.name, user, change, members.presence_ts)
        else:
            joins = tuple(u for u, change in changes.items() if change == "join")
            leaves = tuple(u for u, change in changes.items() if change == "leave")
            event = PresenceBatch(members.name, joins, leaves, members.presence_ts)
        fresh, members.fresh = members.fresh, {}
        own = [(conn, user) for conn, user in fresh.items() if changes.get(user) == "join"]
        if not own:
            self._timed_deliver(members, event)
            return
        # A connection welcomed during the tick must not hear of its own join: its welcome
        # listed the user. It gets the rest of the news, the others the whole frame.
        ready = members.ready
        members.ready = ready.difference(conn for conn, _ in own)
        try:
            self._timed_deliver(members, event)
        finally:
            members.ready = ready
        for conn, user in own:
            news = _frame_for(user, event)
            if news is not None and conn in ready:
                self.write(conn, news.encode())

    def _reset(self, members: RoomMembers, event: Reset) -> None:
        """The room's ids restart: every member must resume through a new welcome."""
        members.last_id = 0
        conns = [*members.ready, *members.waiting]
        log.warning(
            "room %s lost its history (new epoch %s): closing its %d connections with 1012 "
            "so that they resume",
            event.room,
            event.epoch,
            len(conns),
        )
        # Closed now, not by a task: the new epoch's messages follow this reset at once, and
        # one written to a connection that still resumes from the old epoch would reach its
        # client twice (live now, then again in the new epoch's welcome).
        for conn in conns:
            reason = "room history was lost: reconnect"
            wire.close_now(conn, CloseCode.SERVICE_RESTART, reason, grace=CLOSE_GRACE)

    def _deliver(self, members: RoomMembers, event: Event) -> None:
        if isinstance(event, Message):
            if event.id <= members.last_id:  # a broker replay after a reconnect: never twice
                return
            members.last_id = event.id
        for pending in members.waiting.values():
            pending.append(event)
        if not members.ready:
            return
        slow = wire.broadcast(members.ready, event.frame.encode(), max_pending=self.max_pending)
        self.counters.deliveries += len(members.ready) - len(slow)
        for conn in slow:
            self.disconnect_slow(conn)

    def write(self, conn: ServerConnection, data: bytes) -> bool:
        """Write one encoded text frame to ``conn`` now; False if it is closed or too slow."""
        if not wire.is_open(conn):
            return False
        if wire.blocked(conn, self.max_pending):
            self.disconnect_slow(conn)
            return False
        wire.send_text(conn, data)
        return True

    def disconnect_slow(self, conn: ServerConnection) -> None:
        pending = wire.pending(conn)
        if not wire.close_now(
            conn,
            CloseCode.SLOW_CONSUMER,
            "slow consumer: too much pending output",
            grace=CLOSE_GRACE,
        ):
            return
        self.counters.slow_disconnects += 1
        log.warning(
            "slow consumer disconnected peer=%s pending=%d bytes limit=%d",
            peer(conn),
            pending,
            self.max_pending,
        )


def _frame_for(user: str, event: Presence | PresenceBatch) -> str | None:
    """The frame of ``event`` minus ``user``'s own join, which the user's welcome already
    told; None when nothing is left."""
    if isinstance(event, Presence):
        return None if (event.user, event.event) == (user, "join") else event.frame
    return event.frame_without_join(user)


def peer(conn: ServerConnection) -> str:
    """``host:port`` of the client, for log lines."""
    addr = conn.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return str(addr)
