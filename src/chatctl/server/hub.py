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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import Broker, Reset
from chatctl.protocol import CloseCode, Message, Presence
from chatctl.server import wire
from chatctl.server.metrics import Counters

log = logging.getLogger("chatctl.server")

#: Seconds a slow consumer's or an abuser's close frame gets before its TCP connection is
#: aborted (see :func:`chatctl.server.wire.close_now`).
CLOSE_GRACE = 2.0


@dataclass(eq=False)
class RoomMembers:
    name: str
    ready: set[ServerConnection] = field(default_factory=set)
    #: connections whose welcome is not written yet -> the events they must still get
    waiting: dict[ServerConnection, list[Message | Presence]] = field(default_factory=dict)
    last_id: int = 0

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
            match event:
                case Message() if event.id <= after_id:
                    continue
                case Presence() if event.user == user and event.event == "join":
                    continue
            self.write(conn, event.frame.encode())
        members.ready.add(conn)

    async def detach(self, room: str, conn: ServerConnection) -> None:
        async with self._lock:
            members = self.rooms.get(room)
            if members is None:
                return
            members.ready.discard(conn)
            members.waiting.pop(conn, None)
            if not members:
                del self.rooms[room]
                await self.broker.unsubscribe(room)

    def _fanout(self, members: RoomMembers, event: object) -> None:
        """The broker's callback: one event of the room, whatever its type."""
        match event:
            case Message() | Presence():
                if self.observe_fanout is None:
                    self._deliver(members, event)
                    return
                started = time.perf_counter()
                self._deliver(members, event)
                self.observe_fanout(time.perf_counter() - started)
            case Reset():
                self._reset(members, event)
            case _:  # a broker newer than this server: its clients would not know it either
                log.warning("room %s: ignoring an unknown broker event %r", members.name, event)

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

    def _deliver(self, members: RoomMembers, event: Message | Presence) -> None:
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


def peer(conn: ServerConnection) -> str:
    """``host:port`` of the client, for log lines."""
    addr = conn.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return str(addr)
