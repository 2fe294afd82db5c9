"""One schedule's world: its redis-server, nodes, proxies and clients, and how each fault of
:mod:`.schedule` is applied to them (and healed)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import secrets
import signal
from collections.abc import Callable
from pathlib import Path

from chatctl.bench.chaos.clients import Receiver
from chatctl.bench.chaos.history import Fault, History
from chatctl.bench.chaos.procs import Node, RedisService, chatctl_env
from chatctl.bench.chaos.proxy import Proxy
from chatctl.bench.chaos.rcluster import ClusterService
from chatctl.bench.chaos.schedule import NODES, PlannedFault, Schedule
from chatctl.bench.chaos.senders import CliSender, RawSender
from chatctl.tokens.mint import mint

ROOMS = ("a", "b")
#: a slow_consumer fault's burst: this many senders (three times as many under a rate limit)
#: of messages this many characters longer, BURST_BYTES more than twice the --max-pending
#: in all: on loopback the kernel gives the node's socket a send buffer of megabytes (its
#: MSS is 64 KiB), which fills before the node's own pending output starts to grow
BURST_SENDERS = 3
BURST_PAD = 7000
BURST_BYTES = 2**19
#: seconds the short-lived tokens of some clients live (they renew them; the server closes a
#: connection at exp plus 5 s of leeway with 4001 when no renewal came)
TOKEN_TTL = 6
#: keep every message in the history: a recovered: false is then a bug, unless the welcome
#: says ``more`` (cut to fit the schedule's --max-pending) and paging recovers the rest
SERVE_FLAGS = ["--history", "100000", "--drain-timeout", "2"]
SERVE_FLAGS += ["--log-level", "warning"]
#: seconds between the nodes' pings (their pong timeout too); longer than a slow_consumer
#: stall in the schedules that have one: a node would otherwise close a stalled receiver
#: for a missed pong (1011) as often as it cuts it for its pending output (4008)
PING_INTERVAL = 2
SLOW_CONSUMER_PING_INTERVAL = 8


class World:
    def __init__(self, schedule: Schedule, workdir: Path, history: History) -> None:
        self.s, self.dir, self.h = schedule, workdir, history
        self.rng = random.Random(f"clients:{schedule.seed}")
        self.secret = secrets.token_hex(32)
        self.env = chatctl_env(self.secret, workdir / "data")
        self.redis: RedisService | None = None
        self.cluster: ClusterService | None = None
        self.nodes: list[Node] = []
        self.proxies: list[Proxy] = []
        self.receivers: list[Receiver] = []
        self.raw: list[RawSender] = []
        self.cli: list[CliSender] = []
        self.locks: list[asyncio.Lock] = []
        #: the slow_consumer faults' burst senders, running until they are acked
        self.bursts: list[asyncio.Future[None]] = []
        self.burst_count = 0
        #: when senders must be done (set by the runner)
        self.deadline = 0.0

    # -- start and stop -------------------------------------------------------------------
    async def start(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        if self.s.broker == "redis":
            self.redis = RedisService(self.dir / "redis", persistent=self.s.persistent)
            await asyncio.to_thread(self.redis.start)
            url = self.redis.url
        elif self.s.broker == "rediscluster":
            self.cluster = ClusterService(self.dir / "cluster")
            await asyncio.to_thread(self.cluster.start)
            url = self.cluster.url
        elif self.s.broker == "sqlite":
            url = f"sqlite://{self.dir / 'data'}/"
        else:
            url = "memory:"
        slow = any(f.name == "slow_consumer" for f in self.s.faults)
        ping = SLOW_CONSUMER_PING_INTERVAL if slow else PING_INTERVAL
        flags = ["--broker", url, *SERVE_FLAGS, "--max-pending", str(self.s.max_pending)]
        flags += ["--ping-interval", str(ping)]
        if self.cluster is not None:  # an ack waits for a replica: a failover loses nothing
            flags += ["--redis-wait-replicas", "1"]
        if self.s.rate_limit:
            flags += ["--rate-limit", "15", "--rate-burst", "5"]
        for n in range(NODES[self.s.broker]):
            node = Node(f"n{n}", flags, self.env, self.dir / f"n{n}.log")
            await asyncio.to_thread(node.start)
            self.nodes.append(node)
            proxy = Proxy(node.port)
            await proxy.start()
            self.proxies.append(proxy)
            self.locks.append(asyncio.Lock())
        self._make_clients()

    def urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{p}" for n in self.nodes for p in (n.port,)] + [
            f"ws://127.0.0.1:{p.port}" for p in self.proxies
        ]

    def token(self, user: str) -> str:
        return mint(self.secret.encode(), user, ttl=3600)

    def _make_clients(self) -> None:
        """Per room: two receivers from the start (the second on tokens of TOKEN_TTL seconds
        that it renews with ``refresh`` frames) and one joining late; three raw senders; a
        ``chatctl send`` on a WebSocket, renewing its short tokens with ``--token-command``,
        and one posting through the HTTP API (``send --http``)."""
        urls, late = self.urls(), self.s.seconds * 0.4
        for r, room in enumerate(ROOMS):
            for i, delay in enumerate((0.0, 0.0, late)):
                name = f"r{r}{i}"
                short = i == 1
                args = (name, room, urls, self._tokens(name, short), self.h, self.rng)
                refresh = TOKEN_TTL / 2 if short else None
                self.receivers.append(Receiver(*args, delay=delay, refresh=refresh))
        for i, room in enumerate(("a", "b", "a")):
            name = f"s{i}"
            args = (name, room, urls, self._tokens(name), self.h, self.rng)
            self.raw.append(RawSender(*args, window=1 + self.rng.randrange(6)))
        url = self.rng.choice(urls)
        cli = CliSender("c0", "a", url, self.env, self.h, self.rng, token_ttl=TOKEN_TTL)
        self.cli.append(cli)
        url = self.rng.choice(urls).replace("ws://", "http://")
        self.cli.append(CliSender("h0", "b", url, self.env, self.h, self.rng, http=True))

    def _tokens(self, user: str, short: bool = False) -> Callable[[], str]:
        """Where ``user``'s client gets a token for each connection (and each refresh)."""
        ttl = TOKEN_TTL if short else 3600
        return lambda: mint(self.secret.encode(), user, ttl=ttl)

    async def heal(self) -> None:
        """Undo every fault: proxies open, nodes running and continued, disks free, Redis up."""
        for p in self.proxies:
            p.resume()
            p.delay = 0.0
        if self.redis is not None and self.redis.proc is None:
            await asyncio.to_thread(self.redis.start)
        if self.cluster is not None:
            for port in set(self.cluster.ports) - set(self.cluster.alive()):
                await asyncio.to_thread(self.cluster.start_node, port)
            await asyncio.to_thread(self.cluster.wait_healthy)
        for node, lock in zip(self.nodes, self.locks, strict=True):
            async with lock:
                node.signal(signal.SIGCONT)
                node.set_file_limit(resource.RLIM_INFINITY)
                if not node.alive:
                    await asyncio.to_thread(node.start)

    async def close(self) -> None:
        for c in self.cli:
            c.kill()
        for p in self.proxies:
            await p.close()
        for node in self.nodes:
            node.stop()
        if self.redis is not None:
            self.redis.stop(signal.SIGKILL)
        if self.cluster is not None:
            self.cluster.stop()

    # -- faults ---------------------------------------------------------------------------
    async def apply(self, f: PlannedFault) -> str:
        """Apply ``f`` (and heal it after its hold); what was done, for the log."""
        node_i = f.target % len(self.nodes)
        node, lock = self.nodes[node_i], self.locks[node_i]
        loses = not self._durable()
        if f.name in ("node_kill", "node_term"):
            async with lock:
                if not node.alive:
                    return "skipped: node down"
                self.h.add(Fault(f.name, node.name, loses_history=loses))
                node.signal(signal.SIGKILL if f.name == "node_kill" else signal.SIGTERM)
                await asyncio.to_thread(node.wait, 5)
                await asyncio.sleep(f.hold)
                await asyncio.to_thread(node.start)
            return f"{node.name} restarted"
        if f.name == "node_stop":
            async with lock:
                if not node.alive:
                    return "skipped: node down"
                self.h.add(Fault(f.name, node.name))
                node.signal(signal.SIGSTOP)
                await asyncio.sleep(f.hold)
                node.signal(signal.SIGCONT)
            return f"{node.name} stopped {f.hold:.2f}s"
        if f.name == "disk_full":
            async with lock:
                if not node.set_file_limit(0):
                    return "skipped: node down"
                self.h.add(Fault(f.name, node.name))
                await asyncio.sleep(f.hold)
                node.set_file_limit(resource.RLIM_INFINITY)
            return f"{node.name} disk full {f.hold:.2f}s"
        if f.name in ("redis_restart", "redis_kill") and self.redis is not None:
            self.h.add(Fault(f.name, "redis", loses_history=not self.s.persistent))
            self.redis.stop(signal.SIGKILL if f.name == "redis_kill" else signal.SIGTERM)
            await asyncio.sleep(f.hold)
            await asyncio.to_thread(self.redis.start)
            return "redis restarted"
        if f.name in ("master_kill", "master_failover") and self.cluster is not None:
            return await self._cluster_fault(f, self.cluster)
        if f.name == "slow_reader":
            reader = self.receivers[f.target % len(self.receivers)]
            self.h.add(Fault(f.name, reader.name))
            if await reader.stall(f.hold):
                return f"{reader.name} read nothing for {f.hold:.2f}s"
            return f"{reader.name} was not connected"
        if f.name == "slow_consumer":
            return await self._slow_consumer(f)
        if f.name == "client_cut":
            clients = [*self.receivers, *self.raw]
            victim = clients[f.target % len(clients)]
            self.h.add(Fault(f.name, victim.name))
            return f"{victim.name} cut" if victim.cut() else f"{victim.name} was not connected"
        proxy = self.proxies[node_i]
        self.h.add(Fault(f.name, f"proxy{node_i}"))
        if f.name == "proxy_cut":
            return f"proxy{node_i}: {proxy.cut()} sockets cut"
        if f.name == "proxy_pause":
            proxy.pause()
            await asyncio.sleep(f.hold)
            proxy.resume()
            return f"proxy{node_i} paused {f.hold:.2f}s"
        proxy.delay = round(0.02 + f.hold / 10, 3)
        await asyncio.sleep(f.hold * 2)
        proxy.delay = 0.0
        return f"proxy{node_i} delayed {f.hold * 2:.2f}s"

    async def _cluster_fault(self, f: PlannedFault, cluster: ClusterService) -> str:
        masters = await asyncio.to_thread(cluster.masters)
        if not masters:
            return "skipped: no master answers"
        master = masters[f.target % len(masters)]
        if f.name == "master_kill":  # its replica takes over; it comes back as a replica
            self.h.add(Fault(f.name, f"redis:{master}"))
            await asyncio.to_thread(cluster.kill, master)
            await asyncio.sleep(f.hold)
            await asyncio.to_thread(cluster.start_node, master)
            return f"master {master} killed, restarted after {f.hold:.2f}s"
        replica = await asyncio.to_thread(cluster.replica_of, master)
        if replica is None:
            return f"skipped: master {master} has no replica"
        self.h.add(Fault(f.name, f"redis:{replica}"))
        await asyncio.to_thread(cluster.failover, replica)
        return f"replica {replica} took over from {master}"

    async def _slow_consumer(self, f: PlannedFault) -> str:
        """A receiver reads nothing for ``f.hold`` seconds while burst senders send its room
        several times the node's --max-pending in large messages: the node cuts it (4008)
        and it resumes, its welcome cut to fit the bound and the rest paged back."""
        reader = self.receivers[f.target % len(self.receivers)]
        async with contextlib.AsyncExitStack() as held:
            # no node restarts or stops during the stall: they would end its connection
            # before the node had a chance to cut it (the faults wait their turn)
            for lock in self.locks:
                await held.enter_async_context(lock)
            for _ in range(40):  # a node fault it waited for may have cut the reader
                if reader.ws is not None:
                    break
                await asyncio.sleep(0.05)
            return await self._stall_under_burst(reader, f)

    async def _stall_under_burst(self, reader: Receiver, f: PlannedFault) -> str:
        self.h.add(Fault(f.name, reader.name))
        if reader.ws is None:
            return f"{reader.name} was not connected"
        loop = asyncio.get_running_loop()
        n = self.burst_count
        self.burst_count += 1
        senders = BURST_SENDERS * (3 if self.s.rate_limit else 1)
        each = -(-(2 * self.s.max_pending + BURST_BYTES) // (BURST_PAD * senders))
        burst: list[RawSender] = []
        for i in range(senders):
            name = f"b{n}{i}"
            args = (name, reader.room, self.urls(), self._tokens(name), self.h, self.rng)
            sender = RawSender(*args, window=16, interval=0.002, pad=BURST_PAD, limit=each)
            burst.append(sender)
            run = sender.run(loop.time() + f.hold + 10, max(self.deadline, loop.time() + 30))
            self.bursts.append(asyncio.ensure_future(run))
        self.raw += burst
        await reader.stall(f.hold, keepalive=False)
        acked = sum(s.acked for s in burst)
        return (
            f"{reader.name} read nothing for {f.hold:.2f}s under a burst of {each * senders} "
            f"messages of {BURST_PAD} characters ({acked} acked meanwhile)"
        )

    def _durable(self) -> bool:
        """A node's restart keeps history (the broker lives outside it, or on its disk)."""
        return self.s.broker != "memory"


async def run_faults(world: World, log: list[str]) -> None:
    """Each planned fault at its time, as its own task: they may overlap."""
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(f: PlannedFault) -> None:
        await asyncio.sleep(max(0.0, start + f.at - loop.time()))
        try:
            log.append(f"{f.describe()}: {await world.apply(f)}")
        except Exception as exc:
            log.append(f"{f.describe()}: failed: {type(exc).__name__}: {exc}")

    tasks = [asyncio.ensure_future(one(f)) for f in world.s.faults]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["ROOMS", "World", "run_faults"]
