"""Live delivery for the Redis broker: gap-free per room over few pub/sub connections.

With one Redis a process has ONE pub/sub connection (a :class:`Link`) and each room it
subscribes to is a channel on it; on a Redis Cluster (:mod:`chatctl.broker.redis.cluster`)
it has one link per master and each room is a sharded channel on its master's link.

Pub/sub alone loses whatever is published while a connection is down, so every room
remembers the last id it delivered; whenever its subscription is (re)confirmed, or a message
arrives that skips an id, the room is *synced*: live messages are held back, the missing
ones are read from the room's stream (``XRANGE`` after the last delivered id), delivered in
order, and the held messages follow, skipping what the stream already gave. Each message
reaches the callback exactly once, in id order. Messages the stream trimmed (``MAXLEN ~``,
``--history``) before the catch-up read them cannot be delivered: the callback then gets a
:class:`~chatctl.broker.base.Gap` before the first message after the hole.

redis-py's own pub/sub reconnection is not used: it re-subscribes silently and would hide
both the outage and the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection

from chatctl.broker.base import Deliver, Gap, Reset
from chatctl.broker.redis.keys import (
    event_from_payload,
    message_from_entry,
    room_keys,
    room_of_channel,
)
from chatctl.broker.redis.link import PLAIN, Link, stop_task
from chatctl.protocol import Message, Presence

log = logging.getLogger("chatctl.broker.redis")

#: Stream entries read per round trip while catching up.
CATCH_UP_BATCH = 500
#: Channels per SUBSCRIBE command when re-subscribing after a reconnect.
SUBSCRIBE_BATCH = 500
REDIS_ERRORS = (rx.ConnectionError, rx.TimeoutError, OSError)


@dataclass(eq=False)
class _Room:
    name: str
    channel: str
    deliver: Deliver
    #: newest id delivered (None only if subscribed while Redis was down, until the first sync)
    last: int | None = None
    epoch: str | None = None
    confirmed: bool = False
    #: live messages held back while syncing; None when delivering straight through
    held: list[Message] | None = field(default_factory=list)
    dirty: bool = False
    task: asyncio.Task[None] | None = None
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    #: the pub/sub connection the room is subscribed on (None: not routed yet)
    link: Link | None = None


class LiveFeed:
    """Live delivery of a node's rooms over ONE pub/sub connection (plain channels)."""

    dialect = PLAIN

    def __init__(
        self,
        redis: Redis | RedisCluster,
        conn: AbstractConnection | None,
        *,
        prefix: str,
        health_interval: float,
        backoff_cap: float,
        on_down: Callable[[str], None],
        on_up: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.health_interval = health_interval
        self.backoff_cap = backoff_cap
        self._on_down = on_down
        self._on_up = on_up
        self._rooms: dict[str, _Room] = {}
        #: pub/sub connections by name: the one connection here, one per master in a cluster
        self._links: dict[str, Link] = {}
        if conn is not None:
            self._links["redis"] = Link(self, conn, "redis")
        self._pinger: asyncio.Task[None] | None = None
        self._closing = False
        self.reconnects = 0

    # ------------------------------------------------------------------ public

    async def start(self, *, timeout: float) -> None:
        """Start the connection tasks; wait up to ``timeout`` for their first connection."""
        for link in self._links.values():
            link.start()
        self._pinger = asyncio.create_task(self._ping_loop(), name="chatctl-redis-ping")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                for link in list(self._links.values()):
                    await link.first_attempt.wait()

    async def close(self) -> None:
        self._closing = True
        for task in [self._pinger, *(r.task for r in self._rooms.values())]:
            await stop_task(task)
        for link in list(self._links.values()):
            await link.close()
        self._rooms.clear()

    def rooms(self) -> set[str]:
        return set(self._rooms)

    def listening(self, room: str) -> bool:
        """Whether a message published to ``room`` now reaches this node: the room is not
        subscribed here, or its subscription is confirmed on a connection that is up. Not
        while a reconnect is under way: what is published then is read back from the stream,
        and a burst published through this node meanwhile (a client re-sending what was
        refused during the outage) could outrun the stream's cap (``--history``) before the
        catch-up reads it, and its receivers here would never see those messages."""
        r = self._rooms.get(room)
        return r is None or (r.confirmed and r.link is not None and r.link.connected)

    def seen(self, room: str, last: int, epoch: str) -> None:
        """A history read found ``room`` at ``last``: if the room was subscribed while Redis
        was down (no start yet), its live feed starts there. The server reads a welcome's
        history after subscribing, so the feed then delivers everything after what that
        welcome carried, even if it reconnects only after more messages were published."""
        r = self._rooms.get(room)
        if r is not None and r.last is None:
            r.last, r.epoch = last, epoch

    def healthy(self) -> bool:
        """Every connection up and heard from within the deadline, and every room's
        subscription confirmed."""
        deadline = 3 * self.health_interval
        if not all(link.healthy(deadline) for link in self._links.values()):
            return False
        return all(r.confirmed and r.link is not None for r in self._rooms.values())

    async def subscribe(self, room: str, deliver: Deliver, *, timeout: float) -> None:
        """Deliver ``room`` from now on; returns once live (or at once while Redis is down)."""
        current = self._rooms.get(room)
        if current is not None:
            current.deliver = deliver
            return
        keys = room_keys(self._prefix, room)
        r = _Room(room, keys.channel, deliver)
        # Where the room stands now: every later message reaches `deliver`, by pub/sub or, if
        # the subscription is late or Redis is cut off, by catching up from the stream.
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.meta, "last")
                pipe.hget(keys.meta, "epoch")
                last, r.epoch = await pipe.execute()
            r.last = int(last or 0)
        except (*REDIS_ERRORS, rx.RedisError) as exc:
            # Down: the first sync after the reconnect starts from where the room is then.
            log.debug("subscribing %s while Redis is unavailable: %s", room, exc)
        if room in self._rooms:  # subscribed concurrently meanwhile
            self._rooms[room].deliver = deliver
            return
        self._rooms[room] = r
        r.link = link = self.route(r)
        if link is None:
            return  # not routable now: subscribed and synced once it is
        if not link.send(self.dialect.subscribe, r.channel) and link.first_attempt.is_set():
            return  # down: the reconnect subscribes and syncs it
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await r.synced.wait()

    async def unsubscribe(self, room: str) -> None:
        r = self._rooms.pop(room, None)
        if r is None:
            return
        if r.task is not None:
            r.task.cancel()
        if r.link is not None:
            r.link.send(self.dialect.unsubscribe, r.channel)

    # ------------------------------------------------------------------ connections

    def route(self, r: _Room) -> Link | None:
        """The connection ``r`` is subscribed on."""
        return self._links["redis"]

    def rooms_on(self, link: Link) -> list[_Room]:
        return [r for r in self._rooms.values() if r.link is link]

    @staticmethod
    def subscribe_batches(channels: list[str]) -> list[list[str]]:
        """Channels per SUBSCRIBE command when re-subscribing after a reconnect."""
        return [channels[i : i + SUBSCRIBE_BATCH] for i in range(0, len(channels), SUBSCRIBE_BATCH)]

    def link_down(self, link: Link, reason: str) -> None:
        self._on_down(reason)
        self.reconnects += 1

    def refused(self, link: Link, exc: Exception) -> None:
        """Redis refused a subscription on ``link``: with one Redis, a broken connection."""
        link.drop(f"subscription refused: {exc}")

    def check_up(self) -> None:
        """Tell the broker once every connection is up and every room live again."""
        if all(link.connected for link in self._links.values()) and all(
            r.confirmed and r.held is None and r.link is not None for r in self._rooms.values()
        ):
            self._on_up()

    async def _ping_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.health_interval)
            for link in list(self._links.values()):
                link.send("PING")

    # ------------------------------------------------------------------ events

    def _room_of(self, channel: str) -> _Room | None:
        name = room_of_channel(self._prefix, channel)
        r = None if name is None else self._rooms.get(name)
        return r if r is not None and r.channel == channel else None

    def on_subscribed(self, link: Link, channel: str) -> None:
        r = self._room_of(channel)
        if r is None or r.link is not link or r.confirmed:
            return
        r.confirmed = True
        self._sync(r)

    def on_unsubscribed(self, link: Link, channel: str) -> None:
        # An UNSUBSCRIBE for a room subscribed again since: its SUBSCRIBE reply follows.
        r = self._room_of(channel)
        if r is not None and r.link is link:
            self._unconfirm(r)
            self.lost(r)

    def lost(self, r: _Room) -> None:
        """Redis unsubscribed ``r`` on its own (a cluster moved its slot); nothing with one."""

    @staticmethod
    def _unconfirm(r: _Room) -> None:
        r.confirmed = False
        if r.held is None:
            r.held = []

    def on_message(self, channel: str, payload: str) -> None:
        r = self._room_of(channel)
        if r is None:
            return
        try:
            event = event_from_payload(r.name, payload)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed event on %s: %s", channel, exc)
            return
        if not isinstance(event, Message):
            self._hand_over(r, event)
            return
        if r.held is not None:
            r.held.append(event)
        elif r.last is None or event.id == r.last + 1:
            r.last = event.id
            self._hand_over(r, event)
        elif event.id > r.last + 1:  # ids were skipped: fetch them from the stream
            r.held = [event]
            self._sync(r)
        # event.id <= r.last: already delivered

    @staticmethod
    def _hand_over(r: _Room, event: Message | Presence | Reset | Gap) -> None:
        """Call the room's callback; its failure is logged and must not stop the feed."""
        try:
            r.deliver(event)
        except Exception:
            log.exception("the subscriber of room %s failed on %r", r.name, event)

    # ------------------------------------------------------------------ catch-up

    def _sync(self, r: _Room) -> None:
        r.dirty = True
        if r.task is None or r.task.done():
            r.task = asyncio.create_task(self._sync_room(r), name=f"chatctl-sync-{r.name}")

    async def _sync_room(self, r: _Room) -> None:
        try:
            while r.dirty and self._rooms.get(r.name) is r:
                r.dirty = False
                await self._catch_up(r)
        except (*REDIS_ERRORS, rx.RedisError) as exc:
            if r.link is not None:
                r.link.drop(f"catch-up of room {r.name} failed: {exc}")
            return
        except Exception:  # a bug must not leave the room deaf: log it, start over
            log.exception("catch-up of room %s failed", r.name)
            if r.link is not None:
                r.link.drop("catch-up failed")
            return
        self.check_up()

    async def _catch_up(self, r: _Room) -> None:
        """Deliver what the stream holds after ``r.last``, then the held live messages."""
        keys = room_keys(self._prefix, r.name)
        while True:
            start = r.last
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hget(keys.meta, "epoch")
                pipe.hget(keys.meta, "last")
                if start is not None:
                    pipe.xrange(keys.log, f"0-{start + 1}", "+", count=CATCH_UP_BATCH)
                    pipe.hkeys(keys.meta)  # x:<id>: the deleted ones, caught up as tombstones
                replies = await pipe.execute()
            if self._rooms.get(r.name) is not r:
                return
            if start is None and r.last is not None:
                continue  # a history read placed the room meanwhile (seen): read from there
            epoch: str | None = replies[0]
            last = int(replies[1] or 0)
            if r.last is None:  # subscribed while Redis was down, nothing read: live from here
                r.last, r.epoch = last, epoch
                entries: list[Any] = []
            elif (r.epoch is not None and epoch != r.epoch) or last < r.last:
                # a new epoch, or the counter went back (the room was created after we
                # subscribed, so we never saw its first epoch): Redis lost the room
                log.warning(
                    "room %s lost its history in Redis (epoch %s -> %s): ids restart",
                    r.name,
                    r.epoch,
                    epoch,
                )
                r.last, r.epoch = 0, epoch
                self._hand_over(r, Reset(r.name, epoch))
                continue
            else:
                r.epoch = epoch
                entries = replies[2]
            deleted = {f[2:] for f in replies[3] if f.startswith("x:")} if entries else set()
            for entry in entries:
                msg = message_from_entry(r.name, entry)
                if msg.id <= r.last:
                    continue
                if deleted and str(msg.id) in deleted:
                    msg = msg.tombstone()
                if msg.id > r.last + 1:
                    # a hole no read can fill: say so before the message after it, so that
                    # the receivers here learn they missed acked messages (ids do not just jump)
                    log.warning(
                        "room %s: %d messages were trimmed before this node could catch up",
                        r.name,
                        msg.id - r.last - 1,
                    )
                    self._hand_over(r, Gap(r.name, r.last, msg.id))
                r.last = msg.id
                self._hand_over(r, msg)
            if len(entries) == CATCH_UP_BATCH:
                continue
            if self._release_held(r):
                return

    def _release_held(self, r: _Room) -> bool:
        """Deliver held messages that follow on; True when the room is live again."""
        held = r.held or []
        assert r.last is not None
        for i, msg in enumerate(held):
            if msg.id <= r.last:
                continue
            if msg.id > r.last + 1:  # still a hole: read the stream again
                r.held = held[i:]
                return False
            r.last = msg.id
            self._hand_over(r, msg)
        if not r.confirmed:
            r.held = []
            return True  # the next SUBSCRIBE reply syncs again
        r.held = None
        r.synced.set()
        return True
