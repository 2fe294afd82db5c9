"""Local fan-out: the connections of this process, grouped by room.

The hub holds ONE broker subscription per room that has local members, however many
connections the room has. A connection is attached as soon as its handshake is accepted
(before the 101 response is sent), so nothing published after that point can miss it;
until its welcome is written, live events are kept aside for it and then flushed, skipping
messages the welcome's history already carried. The welcome reads the store, which may be
ahead of the room's live feed (after a Redis outage the feed catches up from the stream
later, seconds after publishes and welcomes work again): a connection whose welcome is ahead
is remembered with the welcome's last id, and live messages up to that id skip it. Each
connection thus gets every id once, from its welcome or live, in order. When the feed lost
messages for good (a :class:`~chatctl.broker.base.Gap`: a Redis node cut off while other
nodes published more than the stream keeps), the connections that missed them are closed
with 1012 before the next message, as after a :class:`~chatctl.broker.base.Reset`: each
resumes, and its welcome says it was not recovered.

Fan-out writes each frame, encoded once, to every member without awaiting anyone
(:func:`chatctl.server.wire.broadcast`): a slow or stalled client never delays the others.
A member whose pending output passes ``max_pending`` bytes is disconnected with close code
4008 (slow consumer).

Presence is throttled per room: a change in a room that had none for a tick goes out at
once, as a ``presence`` frame; the changes that come within the next tick are coalesced into
one frame (``presence_batch`` when there are several) sent when it ends, or before the
room's next message if that comes first (presence is never reordered with messages: a
user's join still comes before their first message). A change undone within the tick (a
leave and a join of the same user) is dropped for the members that knew the room before the
tick, but a connection whose user list is newer (a welcome or a ``who`` answer written
within the last :data:`FRESH_SECONDS`, or a connection still waiting for its welcome) is
told the last state of every user the tick touched: its list may have been taken between
the two changes, and the net change would leave it stale. The tick grows with
the room (:mod:`chatctl.server.presence`), so presence costs a room at most about
``1 / PRESENCE_TICK_PER_MEMBER`` deliveries per second whatever its size, and a join storm of
N users O(N) frames in all instead of N per join.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import Broker, Gap, Reset
from chatctl.protocol import (
    DM_PREFIX,
    CloseCode,
    Message,
    Presence,
)
from chatctl.protocol.codec import ENCODER
from chatctl.server import plaintext, wire
from chatctl.server.members import Event, Listener, RoomMembers
from chatctl.server.metrics import Counters
from chatctl.server.moderation import Sanctions
from chatctl.server.presence import FRESH_SECONDS, frame_for, held_event, presence_tick

log = logging.getLogger("chatctl.server")

#: Seconds a slow consumer's or an abuser's close frame gets before its TCP connection is
#: aborted (see :func:`chatctl.server.wire.close_now`).
CLOSE_GRACE = 2.0


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
        #: the connections in the plain-text mode: what is written to them is translated
        #: (server/plaintext.py); the session adds and removes its connection
        self.plain: set[ServerConnection] = set()
        #: the rooms' mutes and bans, kept current by their moderation messages
        self.sanctions = Sanctions(broker)
        #: connections to a conversation -> its room field as the broker names it
        #: (``"room":"+dm+alice+bob"``) and as the connection's user does (``"room":"@bob"``)
        self.labels: dict[ServerConnection, tuple[bytes, bytes]] = {}
        self._lock = asyncio.Lock()

    @property
    def connections(self) -> int:
        return sum(len(r) for r in self.rooms.values())

    async def attach(self, room: str, conn: ServerConnection) -> None:
        """Subscribe ``conn`` to ``room``; live events are kept for it until :meth:`ready`."""
        async with self._lock:
            members = self.rooms.get(room)
            if members is None:
                members = await self._subscribe(room)
            members.waiting[conn] = []

    async def _subscribe(self, room: str) -> RoomMembers:
        """Subscribe to ``room`` and read its sanctions (under the lock). Raises
        ``BrokerError``, subscribed to nothing."""
        members = RoomMembers(room, conversation=room.startswith(DM_PREFIX))
        await self.broker.subscribe(room, lambda event: self._fanout(members, event))
        try:
            await self.sanctions.watch(room)
        except BaseException:
            self.sanctions.unwatch(room)
            await self.broker.unsubscribe(room)
            raise
        self.rooms[room] = members
        return members

    async def listen(self, room: str, listener: Listener) -> None:
        """Call ``listener`` with every event of ``room`` from now on, as members get them
        (a Server-Sent Events stream); a :class:`Reset` tells it the room's ids restarted, a
        :class:`Gap` that the live feed lost messages (it compares with what it was sent)."""
        async with self._lock:
            members = self.rooms.get(room)
            if members is None:
                members = await self._subscribe(room)
            members.listeners.append(listener)

    async def unlisten(self, room: str, listener: Listener) -> None:
        async with self._lock:
            members = self.rooms.get(room)
            if members is None or listener not in members.listeners:
                return
            members.listeners.remove(listener)
            if not members:
                del self.rooms[room]
                if members.presence_timer is not None:
                    members.presence_timer.cancel()
                self.sanctions.unwatch(room)
                await self.broker.unsubscribe(room)

    def ready(self, room: str, conn: ServerConnection, after_id: int, user: str) -> None:
        """The welcome (with history up to ``after_id`` and ``user`` in its user list) is
        written: flush what came since, minus what the welcome already said."""
        members = self.rooms[room]
        for event in members.waiting.pop(conn, ()):
            if isinstance(event, Message):
                if event.id > after_id:
                    self.write(conn, event.frame.encode())
            elif (news := frame_for(user, event)) is not None:
                self.write(conn, news.encode())
        if conn in self.plain:  # told messages only: no presence, no user list to keep fresh
            members.plain.add(conn)
            return
        members.ready.add(conn)
        if after_id > members.last_id:  # the live feed lags behind the welcome
            members.ahead[conn] = after_id
        self.listed(room, conn, user)

    def listed(self, room: str, conn: ServerConnection, user: str) -> None:
        """``conn`` was just given the room's user list (its welcome or a ``who`` answer):
        until :data:`FRESH_SECONDS` have passed, presence ticks tell it the last state of
        every user they touch (see :meth:`_send_held_presence`)."""
        members = self.rooms.get(room)
        if members is not None and conn in members.ready:
            members.fresh[conn] = (user, asyncio.get_running_loop().time())

    async def detach(self, room: str, conn: ServerConnection) -> None:
        async with self._lock:
            members = self.rooms.get(room)
            if members is None:
                return
            members.ready.discard(conn)
            members.plain.discard(conn)
            members.waiting.pop(conn, None)
            members.fresh.pop(conn, None)
            members.ahead.pop(conn, None)
            if not members:
                del self.rooms[room]
                if members.presence_timer is not None:
                    members.presence_timer.cancel()
                self.sanctions.unwatch(room)
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
                if members.touched:  # what happened before the message is told before it
                    self._send_held_presence(members)
                self._timed_deliver(members, event)
            case Reset():
                self._reset(members, event)
            case Gap():
                self._gap(members, event)
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
        members.touched.pop(event.user, None)  # re-inserted last: the frame's order
        members.touched[event.user] = event.event
        members.presence_ts = event.ts

    def _end_presence_tick(self, members: RoomMembers) -> None:
        """Send what the tick gathered, as one frame, and open the next tick; with nothing
        gathered, the room is quiet again and its next change goes out at once."""
        if not members.touched or self.rooms.get(members.name) is not members:
            # quiet: the next change goes out at once, to every member as it is, so no
            # connection's list can be left behind by a change that cancels another
            members.presence_timer = None
            members.fresh.clear()
            return
        self._open_presence_tick(members)
        self._send_held_presence(members)

    def _send_held_presence(self, members: RoomMembers) -> None:
        """Send the changes held for the tick: the net ones to the members that knew the
        room before it, the last state of every touched user to the fresh connections (minus
        their own join, which their list had) and to those still waiting for a welcome."""
        changes, members.presence = members.presence, {}
        touched, members.touched = members.touched, {}
        fresh = self._prune_fresh(members)
        event = held_event(members, changes)
        if touched == changes and not any(touched.get(u) == "join" for u, _ in fresh.values()):
            if event is not None:  # the common case: one frame for everyone
                self._timed_deliver(members, event)
            return
        full = held_event(members, touched)
        assert full is not None  # touched is never empty here
        ready, waiting = members.ready, members.waiting
        members.ready = ready.difference(fresh)
        members.waiting = {}
        try:
            if event is not None:
                self._timed_deliver(members, event)
        finally:
            members.ready, members.waiting = ready, waiting
        for pending in waiting.values():
            pending.append(full)
        for conn, (user, _) in fresh.items():
            news = frame_for(user, full)
            if news is not None and conn in ready:
                self.write(conn, news.encode())

    @staticmethod
    def _prune_fresh(members: RoomMembers) -> dict[ServerConnection, tuple[str, float]]:
        """The fresh connections, after forgetting those listed too long ago."""
        fresh = members.fresh
        if fresh:
            oldest = asyncio.get_running_loop().time() - FRESH_SECONDS
            for conn in [c for c, (_, at) in fresh.items() if at < oldest]:
                del fresh[conn]
        return fresh

    def _reset(self, members: RoomMembers, event: Reset) -> None:
        """The room's ids restart: every member must resume through a new welcome."""
        members.last_id = 0
        members.ahead.clear()
        conns = [*members.ready, *members.plain, *members.waiting]
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
        _make_resume(members, conns, "room history was lost: reconnect", event)

    def _gap(self, members: RoomMembers, event: Gap) -> None:
        """The live feed lost messages ``after_id + 1 .. next_id - 1`` (trimmed from the store
        before it could read them): every member that has not got them from its welcome must
        resume through a new one, which says it was not recovered. Closed now, before the
        message after the hole is delivered: nothing after the hole reaches them live."""
        missed = event.next_id - 1
        keep = {conn for conn, after in members.ahead.items() if after >= missed}
        members.ahead = {conn: members.ahead[conn] for conn in keep}
        conns = [c for c in members.ready if c not in keep]
        # waiting: their welcome may start before the hole; plain: they have no id to compare
        conns += [*members.plain, *members.waiting]
        log.warning(
            "room %s: messages %d to %d were lost before this node could deliver them: "
            "closing its %d connections that missed them with 1012 so that they resume",
            event.room,
            event.after_id + 1,
            missed,
            len(conns),
        )
        _make_resume(members, conns, "messages were missed: reconnect", event)

    def _deliver(self, members: RoomMembers, event: Event) -> None:
        targets = members.ready
        if isinstance(event, Message):
            if event.id <= members.last_id:  # a broker replay after a reconnect: never twice
                return
            members.last_id = event.id
            if members.ahead:
                targets = _not_ahead_of(members, event.id)
        for pending in members.waiting.values():
            pending.append(event)
        if members.listeners:
            for listener in list(members.listeners):
                listener(event)
        if members.plain and isinstance(event, Message):
            self._broadcast(members.plain, plaintext.message_line(event))
        if targets:
            if members.conversation:  # two users: a frame each, in its own words
                for conn in list(targets):
                    if self.write(conn, event.frame.encode()):
                        self.counters.deliveries += 1
            else:
                self._broadcast(targets, event.frame.encode())
        if isinstance(event, Message) and event.kind == "moderation":
            self.sanctions.apply(event)  # after it: a kicked member is told why first

    def _broadcast(self, conns: set[ServerConnection], data: bytes) -> None:
        slow = wire.broadcast(conns, data, max_pending=self.max_pending)
        self.counters.deliveries += len(conns) - len(slow)
        for conn in slow:
            self.disconnect_slow(conn)

    def relabel(self, conn: ServerConnection, room: str, label: str) -> None:
        """Write ``conn``'s frames with the conversation ``room`` named ``label`` (``@bob``):
        nothing a client is sent names a conversation's internal room."""
        self.labels[conn] = (
            b'"room":' + ENCODER.encode(room).encode(),
            b'"room":' + ENCODER.encode(label).encode(),
        )

    def write(self, conn: ServerConnection, data: bytes) -> bool:
        """Write one encoded text frame to ``conn`` now (to a plain-text connection: the
        lines it stands for); False if it is closed or too slow."""
        if self.labels and (names := self.labels.get(conn)) is not None:
            # a JSON string's quotes inside a text are escaped: only room fields match
            data = data.replace(*names)
        if self.plain and conn in self.plain:
            return all([self._write(conn, line) for line in plaintext.translate(data)])
        return self._write(conn, data)

    def _write(self, conn: ServerConnection, data: bytes) -> bool:
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


def _not_ahead_of(members: RoomMembers, id: int) -> set[ServerConnection]:
    """The ready members that are to get message ``id`` live: not those whose welcome
    already carried it; those that the feed has now caught up with are forgotten."""
    members.ahead = {conn: after for conn, after in members.ahead.items() if after >= id}
    return members.ready.difference(members.ahead)


def peer(conn: ServerConnection) -> str:
    """``host:port`` of the client, for log lines."""
    addr = conn.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return str(addr)


def _make_resume(
    members: RoomMembers, conns: list[ServerConnection], reason: str, event: Reset | Gap
) -> None:
    """Close ``conns`` with 1012 and ``reason`` at once, so that each resumes through a new
    welcome, and tell the room's listeners (Server-Sent Events) of ``event``."""
    for conn in conns:
        wire.close_now(conn, CloseCode.SERVICE_RESTART, reason, grace=CLOSE_GRACE)
    for listener in list(members.listeners):
        listener(event)
