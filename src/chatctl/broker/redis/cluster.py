"""The Redis Cluster broker: ``redis+cluster://HOST:PORT[,HOST:PORT…]`` (or ``rediss+cluster``).

The same broker as :class:`~chatctl.broker.redis.RedisBroker` (same key layout, scripts,
catch-up, epochs, presence), on a Redis Cluster (>= 7):

- Every key of a room carries the hash tag ``{room}``, so a room lives in ONE slot and each
  script runs on the room's master. Commands go through redis-py's asyncio ``RedisCluster``,
  which follows MOVED/ASK and retries TRYAGAIN; nothing is retried blindly after a
  connection error (a retried publish could store twice): a publish that may have run (a
  master killed mid-command) is resolved as on one Redis, by running the script again with
  the same client id (:meth:`RedisBroker._resolve`).
- Live delivery uses sharded pub/sub: the scripts ``SPUBLISH`` to the room's channel (same
  slot), and :class:`ShardedFeed` keeps at most ONE ``SSUBSCRIBE`` connection per master.
  When a slot moves (Redis unsubscribes the channel with ``-sunsubscribe``), a subscription
  is refused with MOVED, or a master's connection fails (failover), the feed refreshes the
  cluster's slot map, re-subscribes the room on its current master and catches it up from
  its stream: nothing is lost, repeated or re-ordered.
- Connections: at most ``max_connections`` commands in flight (so at most that many per
  node) plus one pub/sub connection per master, whatever the number of clients and rooms.
- ``wait_replicas``: WAIT for that many replicas after each publish, on the connection that
  stored it, before acking (docs/redis.md says when a failover can lose an acked message
  without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from redis import exceptions as rx
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from chatctl.broker.redis.broker import RedisBroker
from chatctl.broker.redis.link import SHARDED, Link, stop_task
from chatctl.broker.redis.live import REDIS_ERRORS, LiveFeed, _Room
from chatctl.errors import UsageError

log = logging.getLogger("chatctl.broker.redis")

SCHEMES = ("redis+cluster", "rediss+cluster")
#: Errors of a topology refresh that mean "try again later".
_REFRESH_ERRORS = (*REDIS_ERRORS, rx.RedisError, rx.RedisClusterException)


def sharded(script: str) -> str:
    """``script`` with its PUBLISH calls made SPUBLISH (the channel is in the keys' slot)."""
    out = script.replace("redis.call('PUBLISH',", "redis.call('SPUBLISH',")
    if "'PUBLISH'" in out:
        raise ValueError("a script publishes in a way sharded() does not rewrite")
    return out


def parse_cluster_url(url: str) -> tuple[str, list[tuple[str, int]]]:
    """``(single-node URL of the first seed, [(host, port)] of the others)``.

    ``redis+cluster://[user:password@]HOST:PORT[,HOST:PORT…][/][?options]``; the options
    (``ssl_ca_certs``…) and credentials apply to every node.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise UsageError(f"not a Redis Cluster URL: {url!r} (redis+cluster://HOST:PORT,...)")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    if path.strip("/") not in ("", "0"):
        raise UsageError("a Redis Cluster has only database 0: drop the /N from the URL")
    creds, _, hosts = netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon or not port.isdigit() or not host:
            raise UsageError(f"Redis Cluster seed {item!r} is not HOST:PORT")
        seeds.append((unquote(host.strip("[]")), int(port)))
    single = scheme.lower().removesuffix("+cluster")
    first = f"{single}://{creds + '@' if creds else ''}{hosts.split(',')[0].strip()}/0"
    return first + (f"?{query}" if query else ""), seeds[1:]


class _BoundedCluster(RedisCluster):
    """``RedisCluster`` whose commands and pipelines each hold one of ``permits`` while they
    run (redis-py's per-node pool refuses with MaxConnectionsError instead of waiting), and
    whose own exceptions (no reachable seed, a slot without a master mid-failover) become
    ``ClusterDownError``, a RedisError the broker counts as "unavailable"."""

    permits: asyncio.Semaphore

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.permits:
            try:
                return await super().execute_command(*args, **kwargs)
            except rx.RedisClusterException as exc:
                raise rx.ClusterDownError(str(exc)) from exc

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]


class _BoundedPipeline(ClusterPipeline):
    async def initialize(self) -> ClusterPipeline:
        try:
            return await super().initialize()  # reads the slot map if not known yet
        except rx.RedisClusterException as exc:
            raise rx.ClusterDownError(str(exc)) from exc

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        client: _BoundedCluster = self.cluster_client  # type: ignore[assignment]
        async with client.permits:
            try:
                return await super().execute(raise_on_error, allow_redirections)
            except rx.RedisClusterException as exc:
                raise rx.ClusterDownError(str(exc)) from exc


class ShardedFeed(LiveFeed):
    """Live delivery over sharded pub/sub: one ``SSUBSCRIBE`` connection per master that
    serves at least one of this node's rooms, rooms routed by their slot."""

    dialect = SHARDED

    def __init__(self, cluster: _BoundedCluster, **options: Any) -> None:
        super().__init__(cluster, None, **options)
        self._cluster = cluster
        #: rooms to subscribe again once the slot map is refreshed
        self._lost: set[str] = set()
        self._wake = asyncio.Event()
        self._router: asyncio.Task[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()

    async def start(self, *, timeout: float) -> None:
        await super().start(timeout=timeout)
        self._router = asyncio.create_task(self._route_loop(), name="chatctl-redis-router")

    async def close(self) -> None:
        self._closing = True
        await stop_task(self._router)
        await super().close()
        for task in list(self._closers):
            await stop_task(task)

    # ------------------------------------------------------------------ routing

    def route(self, r: _Room) -> Link | None:
        try:
            node = self._cluster.get_node_from_key(r.channel)
        except _REFRESH_ERRORS:
            node = None
        if node is None:  # slot map unknown (cluster unreachable) or slot without a master
            self._lose(r)
            return None
        link = self._links.get(node.name)
        if link is None:
            conn = node.connection_class(
                **{**node.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
            )
            link = self._links[node.name] = Link(self, conn, node.name)
            link.start()
        return link

    @staticmethod
    def subscribe_batches(channels: list[str]) -> list[list[str]]:
        # SSUBSCRIBE takes channels of one slot only: one room per command.
        return [[c] for c in channels]

    def link_down(self, link: Link, reason: str) -> None:
        super().link_down(link, f"{link.name}: {reason}")
        self._wake.set()  # maybe a failover: look up the rooms' masters again

    def refused(self, link: Link, exc: Exception) -> None:
        """An SSUBSCRIBE refused because its slot moved (MOVED) or is moving (ASK,
        TRYAGAIN): subscribe the room again once the slot map says where."""
        if isinstance(exc, rx.AskError):  # MOVED too
            lost = [r for r in self.rooms_on(link) if key_slot(r.channel.encode()) == exc.slot_id]
        elif isinstance(exc, rx.TryAgainError):
            lost = [r for r in self.rooms_on(link) if not r.confirmed]
        else:
            super().refused(link, exc)
            return
        for r in lost:
            self._lose(r)

    def lost(self, r: _Room) -> None:
        self._lose(r)  # Redis unsubscribed the room itself: its slot moved

    def _lose(self, r: _Room) -> None:
        self._lost.add(r.name)
        self._wake.set()

    async def _route_loop(self) -> None:
        attempt = 0
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.health_interval):
                    await self._wake.wait()
            self._wake.clear()
            if not self._lost and all(link.connected for link in self._links.values()):
                attempt = 0
                continue
            try:
                await self._cluster.initialize()
                await self._cluster.nodes_manager.initialize()
            except _REFRESH_ERRORS as exc:
                log.debug("refreshing the Redis Cluster slot map failed: %s", exc)
                attempt += 1
                await asyncio.sleep(min(self.backoff_cap, 0.05 * 2**attempt))
                continue
            self._reroute()
            await asyncio.sleep(0.05)  # at most 20 refreshes a second, whatever happens

    def _reroute(self) -> None:
        """Move every lost room, and every room of a connection that is down, to the link of
        its slot's current master, and subscribe it there."""
        lost, self._lost = self._lost, set()
        for r in list(self._rooms.values()):
            old = r.link
            if r.name not in lost and old is not None and old.connected:
                continue
            new = self.route(r)
            if new is None:
                continue
            if new is not old:
                if old is not None:
                    old.send(self.dialect.unsubscribe, r.channel)
                self._unconfirm(r)
                r.link = new
                log.info("room %s: now subscribed on the Redis Cluster node %s", r.name, new.name)
                new.send(self.dialect.subscribe, r.channel)
            elif r.name in lost:
                new.send(self.dialect.subscribe, r.channel)
        for name, link in list(self._links.items()):
            if not self.rooms_on(link):  # no room left on that master (or it is gone)
                del self._links[name]
                task = asyncio.create_task(link.close())
                self._closers.add(task)
                task.add_done_callback(self._closers.discard)


class RedisClusterBroker(RedisBroker):
    """A :class:`~chatctl.broker.base.Broker` backed by a Redis Cluster (>= 7)."""

    #: a publish with WAIT failed on its node: read the slot map before the next one
    _stale_slots = False

    def _connect(
        self, url: str, options: dict[str, Any], max_connections: int, feed: dict[str, Any]
    ) -> tuple[Any, LiveFeed]:
        first, others = parse_cluster_url(url)
        cluster = _BoundedCluster.from_url(
            first,
            startup_nodes=[ClusterNode(host, port) for host, port in others],
            max_connections=max_connections,
            retry=options.pop("retry"),
            **options,
        )
        assert isinstance(cluster, _BoundedCluster)
        cluster.permits = asyncio.Semaphore(max_connections)
        live = ShardedFeed(
            cluster, prefix=self.prefix, on_down=self._went_down, on_up=self._came_back, **feed
        )
        return cluster, live

    def _script(self, source: str) -> AsyncScript:
        return self._redis.register_script(sharded(source))  # type: ignore[no-any-return]

    async def _disconnect(self) -> None:
        await self._redis.aclose()

    def _drop_idle_connections(self, *, again: bool = False) -> None:
        """redis-py already drops a failed node's idle connections."""

    async def _run_all(self, calls: list[tuple[AsyncScript, list[str], list[Any]]]) -> None:
        """Scripts cannot be pipelined across a cluster: run them side by side instead (as
        many at once as the command pool allows)."""
        if not calls:
            await self._redis.ping()
            return
        results = await asyncio.gather(
            *(script(keys=keys, args=args) for script, keys, args in calls),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _store(self, keys: list[str], args: list[Any]) -> Any:
        if not self.wait_replicas:
            return await self._publish(keys=keys, args=args)
        script = self._publish
        reply, replicated = await self._then_wait(
            keys[0], lambda: ("EVALSHA", script.sha, len(keys), *keys, *args)
        )
        if reply[0] != 0:  # a repeat: see RedisBroker._store
            _, replicated = await self._then_wait(keys[0], lambda: ("HINCRBY", keys[0], "last", 0))
        self._check_replicated(replicated)
        return reply

    async def _then_wait(self, key: str, command: Callable[[], tuple[Any, ...]]) -> tuple[Any, int]:
        """Run ``command`` on the master of ``key``'s slot, then WAIT on the same connection:
        redis-py would send them on two. A redirection (the slot moved or is moving) or an
        unknown script means nothing ran: look again and retry, for up to the timeout."""
        cluster: _BoundedCluster = self._redis
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        async with cluster.permits:
            while True:
                try:
                    if self._stale_slots:  # the last attempt failed: the master may be gone
                        await cluster.nodes_manager.initialize()
                        self._stale_slots = False
                    node = cluster.get_node_from_key(key)
                    if node is None:
                        raise rx.ClusterDownError(f"no master serves {key}")
                    return await self._run_on(node, command())
                except rx.MovedError:
                    await cluster.nodes_manager.initialize()
                except (rx.AskError, rx.TryAgainError, rx.SlotNotCoveredError):
                    await asyncio.sleep(0.05)  # the slot is moving: wait until it has moved
                except rx.NoScriptError:
                    self._publish.sha = await cluster.script_load(self._publish.script)
                except (*REDIS_ERRORS, rx.ClusterDownError):
                    self._stale_slots = True
                    raise
                if loop.time() > deadline:
                    raise rx.TryAgainError(f"the slot of {key} did not settle in time")

    async def _run_on(self, node: ClusterNode, command: tuple[Any, ...]) -> tuple[Any, int]:
        conn = node.acquire_connection()
        try:
            wait = ("WAIT", *self._wait_args())
            await conn.send_packed_command(conn.pack_commands([command, wait]))
            try:
                reply = await conn.read_response()
            finally:
                replicated = await conn.read_response()
            return reply, int(replicated)
        except REDIS_ERRORS:
            await conn.disconnect()
            raise
        finally:
            node.release(conn)
