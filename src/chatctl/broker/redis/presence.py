"""Presence on Redis: which users have a connection in a room, on any node.

Presence is a set of per-connection entries that expire unless their node refreshes them
every ``presence_ttl / 4`` seconds (the heartbeat here), so the users of a node that dies
disappear within about ``presence_ttl`` seconds; any node reaps expired entries and
announces the leaves. :class:`~chatctl.broker.redis.RedisBroker` mixes this in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from redis import exceptions as rx
from redis.commands.core import AsyncScript

from chatctl.broker.redis.errors import UNAVAILABLE
from chatctl.broker.redis.keys import ROOMS_LIST, ROOMS_TOUCH, room_keys, rooms_key
from chatctl.broker.redis.live import LiveFeed
from chatctl.errors import BrokerError

log = logging.getLogger("chatctl.broker.redis")

#: Connection pairs per REFRESH script call.
REFRESH_BATCH = 1000


class RedisPresence:
    """The presence half of the Redis broker (its join, leave, users and heartbeat)."""

    prefix: str
    presence_ttl: float
    _ttl_ms: int
    _local: dict[str, dict[str, str]]
    _pending_leaves: set[tuple[str, str]]
    _beat_now: asyncio.Event
    _closing: bool
    _live: LiveFeed
    _join: AsyncScript
    _leave: AsyncScript
    _refresh: AsyncScript
    _users: AsyncScript
    _redis: Any  # the command client (a Redis or a RedisCluster)
    #: the room directory's scripts (touch, list), registered on first use
    _directory: tuple[AsyncScript, AsyncScript] | None = None

    if TYPE_CHECKING:  # given by RedisBroker

        def _script(self, source: str) -> AsyncScript: ...

        def _went_down(self, reason: str) -> None: ...

        def _succeeded(self) -> None: ...

        def _failed(self, exc: Exception) -> BrokerError: ...

        async def _run_all(self, calls: list[tuple[AsyncScript, list[str], list[Any]]]) -> None: ...

    async def join(self, room: str, user: str, conn_id: str) -> None:
        """Record the connection; while Redis is down the heartbeat records it once back."""
        keys = room_keys(self.prefix, room)
        first = room not in self._local
        self._local.setdefault(room, {})[conn_id] = user
        self._pending_leaves.discard((room, conn_id))
        ttl = round(self.presence_ttl * 1000)
        try:
            await self._join(keys=keys.presence, args=[keys.channel, ttl, conn_id, user])
            if first:  # the heartbeat keeps it listed from now on
                touch, _ = self._directory_scripts()
                await touch(keys=[rooms_key(self.prefix)], args=[ttl, room])
        except UNAVAILABLE as exc:
            self._went_down(str(exc))

    async def leave(self, room: str, user: str, conn_id: str) -> None:
        """Forget the connection; while Redis is down the heartbeat retries (or it expires)."""
        keys = room_keys(self.prefix, room)
        conns = self._local.get(room)
        if conns is not None:
            conns.pop(conn_id, None)
            if not conns:
                del self._local[room]
        try:
            await self._leave(keys=keys.presence, args=[keys.channel, conn_id])
        except UNAVAILABLE as exc:
            self._went_down(str(exc))
            self._pending_leaves.add((room, conn_id))

    async def users(self, room: str) -> list[str]:
        keys = room_keys(self.prefix, room)
        try:
            users: list[str] = await self._users(keys=keys.presence, args=[keys.channel])
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        return sorted(users)

    async def last_id(self, room: str) -> int:
        """The room's id counter, read without creating the room's keys."""
        try:
            last = await self._redis.hget(room_keys(self.prefix, room).meta, "last")
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        return 0 if last is None else int(last)

    async def member_rooms(self) -> list[str]:
        """The rooms with members on any node (the directory of the nodes' heartbeats): a
        room stays listed up to ``presence_ttl`` after its node died or its last member left,
        so a caller checks its users."""
        _, listing = self._directory_scripts()
        try:
            rooms: list[str] = await listing(keys=[rooms_key(self.prefix)])
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        return sorted(rooms)

    def _directory_scripts(self) -> tuple[AsyncScript, AsyncScript]:
        if self._directory is None:
            self._directory = (self._script(ROOMS_TOUCH), self._script(ROOMS_LIST))
        return self._directory

    async def _heartbeat_loop(self) -> None:
        interval = self.presence_ttl / 4
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._beat_now.wait()
            self._beat_now.clear()
            try:
                await self._beat()
            except UNAVAILABLE as exc:
                self._went_down(str(exc))
            except rx.RedisError as exc:
                log.warning("presence heartbeat failed: %s", exc)
            else:
                self._succeeded()

    async def _beat(self) -> None:
        """Refresh this node's connections, retry failed leaves, reap expired entries."""
        ttl = round(self.presence_ttl * 1000)
        leaves = list(self._pending_leaves)
        rooms = set(self._local) | self._live.rooms()
        calls: list[tuple[AsyncScript, list[str], list[Any]]] = []
        for room, conn_id in leaves:
            keys = room_keys(self.prefix, room)
            calls.append((self._leave, keys.presence, [keys.channel, conn_id]))
        for room in rooms:
            keys = room_keys(self.prefix, room)
            pairs = [x for item in self._local.get(room, {}).items() for x in item]
            for i in range(0, max(len(pairs), 1), 2 * REFRESH_BATCH):
                chunk = pairs[i : i + 2 * REFRESH_BATCH]
                calls.append(
                    (
                        self._refresh,
                        [*keys.presence, keys.meta, keys.log],
                        [keys.channel, ttl, self._ttl_ms, *chunk],
                    )
                )
        if self._local:
            touch, _ = self._directory_scripts()
            calls.append((touch, [rooms_key(self.prefix)], [ttl, *self._local]))
        await self._run_all(calls)
        self._pending_leaves.difference_update(leaves)
