"""One pub/sub connection of the Redis brokers' live feed (:mod:`chatctl.broker.redis.live`).

A :class:`Link` owns its connection: it connects, subscribes the rooms the feed routed to it,
reads until the connection fails, and reconnects with capped, jittered backoff. What it reads
goes to the feed, which does the bookkeeping and the catch-up. With one Redis a feed has one
link; on a Redis Cluster, one per master, speaking the :data:`SHARDED` dialect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis import exceptions as rx
from redis.asyncio.connection import AbstractConnection

if TYPE_CHECKING:
    from chatctl.broker.redis.live import LiveFeed

log = logging.getLogger("chatctl.broker.redis")


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait for it to end, cancelling again if it swallowed the request
    (library code that catches ``CancelledError`` while cleaning up a connection can)."""
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if task is not None and not task.cancelled() and task.exception() is not None:
        log.error("%s had failed: %r", task.get_name(), task.exception())


@dataclass(frozen=True)
class Dialect:
    """The pub/sub commands and reply kinds of one flavour: plain channels or, on a Redis
    Cluster, sharded channels (``SSUBSCRIBE``, Redis 7+) served by the room's master."""

    subscribe: str
    unsubscribe: str
    message: str
    subscribed: str
    unsubscribed: str


PLAIN = Dialect("SUBSCRIBE", "UNSUBSCRIBE", "message", "subscribe", "unsubscribe")
SHARDED = Dialect("SSUBSCRIBE", "SUNSUBSCRIBE", "smessage", "ssubscribe", "sunsubscribe")


class Link:
    """One pub/sub connection, owned by :meth:`_run`: it connects, subscribes the rooms routed
    to it, reads until the connection fails (a read that sees nothing for
    ``3 * health_interval`` seconds counts as failed; the feed sends a PING every
    ``health_interval``), then reconnects with capped, jittered backoff while it has rooms."""

    def __init__(self, feed: LiveFeed, conn: AbstractConnection, name: str) -> None:
        self.feed = feed
        self.conn = conn
        self.name = name
        self.connected = False
        self.rx_at = 0.0
        self.first_attempt = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._closer: asyncio.Future[None] | None = None

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"chatctl-redis-pubsub-{self.name}")

    async def close(self) -> None:
        self._closing = True
        self.connected = False
        await stop_task(self._runner)
        with contextlib.suppress(Exception):
            await self.conn.disconnect(nowait=True)

    def healthy(self, deadline: float) -> bool:
        return self.connected and asyncio.get_running_loop().time() - self.rx_at <= deadline

    def send(self, *args: str) -> bool:
        """Queue a command on the connection if it is up; False if it is down."""
        if not self.connected or not self.conn.is_connected:
            return False
        task = asyncio.ensure_future(self._write(args))
        task.add_done_callback(self._written)
        return True

    async def _write(self, args: tuple[str, ...]) -> None:
        # Checked again right before writing: redis-py's send_command would silently open a
        # new connection (without our subscriptions) if this one dropped since send().
        if self.connected and self.conn.is_connected:
            await self.conn.send_command(*args, check_health=False)

    def _written(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.drop(f"pub/sub write failed: {task.exception()}")

    def drop(self, reason: str) -> None:
        """Give up on the current connection; :meth:`_run` notices and reconnects."""
        if self.connected:
            log.debug("dropping the pub/sub connection %s: %s", self.name, reason)
            self.connected = False
            self._closer = asyncio.ensure_future(self.conn.disconnect(nowait=True))

    async def _run(self) -> None:
        attempt = 0
        feed = self.feed
        loop = asyncio.get_running_loop()
        while not self._closing:
            try:
                await self.conn.connect()  # type: ignore[no-untyped-call]
                self.rx_at = loop.time()
                rooms = feed.rooms_on(self)
                for r in rooms:
                    r.confirmed = False
                    if r.held is None:
                        r.held = []
                self.connected = True
                for batch in feed.subscribe_batches([r.channel for r in rooms]):
                    await self.conn.send_command(feed.dialect.subscribe, *batch, check_health=False)
                if not rooms:
                    feed.check_up()
                attempt = 0
                self.first_attempt.set()
                await self._read_loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of this connection means: reconnect
                reason = str(exc) or type(exc).__name__
            else:
                reason = "pub/sub connection closed"
            self.connected = False
            self.first_attempt.set()
            with contextlib.suppress(Exception):
                await self.conn.disconnect(nowait=True)
            if self._closing:
                return
            feed.link_down(self, reason)
            delay = min(feed.backoff_cap, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            attempt += 1
            await asyncio.sleep(delay)

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        feed = self.feed
        dialect = feed.dialect
        deadline = 3 * feed.health_interval
        while self.connected:
            try:
                resp: Any = await self.conn.read_response(timeout=deadline)
            except rx.ResponseError as exc:  # a refused (S)SUBSCRIBE: MOVED, CROSSSLOT...
                feed.refused(self, exc)
                continue
            if resp is None:
                if not self.connected:
                    return
                raise rx.TimeoutError(f"no reply on the pub/sub connection for {deadline:.1f}s")
            self.rx_at = loop.time()
            kind = resp[0]
            if kind == dialect.message:
                feed.on_message(resp[1], resp[2])
            elif kind == dialect.subscribed:
                feed.on_subscribed(self, resp[1])
            elif kind == dialect.unsubscribed:
                feed.on_unsubscribed(self, resp[1])
