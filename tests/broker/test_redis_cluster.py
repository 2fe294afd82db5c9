"""What only the Redis Cluster broker has to get right: rooms in one slot on their master,
sharded pub/sub, bounded connections per node, and surviving a slot migration and a master
failover without losing, repeating or re-ordering anything acked. Every test runs on real
redis-server processes joined by ``redis-cli --cluster create``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from chatctl.broker import create_broker
from chatctl.broker.base import Reset
from chatctl.broker.redis.cluster import RedisClusterBroker, parse_cluster_url, sharded
from chatctl.broker.redis.keys import PUBLISH
from chatctl.errors import BrokerError, BrokerUnavailable, UsageError
from chatctl.protocol import Message
from support.brokers import Sink, eventually
from support.cluster_helpers import LocalCluster, room_in_slot, slot_of
from support.helpers import make_tls_files

pytestmark = pytest.mark.redis
T = TypeVar("T")


def make(cluster: LocalCluster, **options: object) -> RedisClusterBroker:
    opts: dict[str, object] = {"prefix": "t", "health_interval": 0.2, "timeout": 1.0}
    opts.update(options)
    return RedisClusterBroker(cluster.url, **opts)  # type: ignore[arg-type]


@pytest.fixture
async def nodes(redis_cluster: LocalCluster) -> AsyncIterator[list[RedisClusterBroker]]:
    """Two brokers on the shared cluster, each with its own prefix per test."""
    prefix = f"n{id(object())}"
    brokers = [make(redis_cluster, prefix=prefix) for _ in range(2)]
    for b in brokers:
        await b.start()
    try:
        yield brokers
    finally:
        for b in brokers:
            await b.close()


@pytest.fixture
def replicated() -> Iterator[LocalCluster]:
    """A cluster of its own with one replica per master: tests kill and reshard it."""
    cluster = LocalCluster(masters=3, replicas=1).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


def test_cluster_urls() -> None:
    first, others = parse_cluster_url("redis+cluster://u:p%40ss@10.0.0.1:7000,h2:7001,[::1]:7002")
    assert first == "redis://u:p%40ss@10.0.0.1:7000/0"
    assert others == [("h2", 7001), ("::1", 7002)]
    first, others = parse_cluster_url("rediss+cluster://h:7000/?ssl_ca_certs=/ca.pem")
    assert first == "rediss://h:7000/0?ssl_ca_certs=/ca.pem" and others == []
    for bad in ("redis+cluster://h", "redis+cluster://h:7000/3", "redis://h:1"):
        with pytest.raises(UsageError):
            parse_cluster_url(bad)
    assert create_broker("redis+cluster://127.0.0.1:1").__class__ is RedisClusterBroker


async def test_starts_while_the_cluster_is_down_and_a_password() -> None:
    """A node may start before its cluster; a wrong password stops it at start in one line."""
    cluster = LocalCluster(masters=3, password="s3cret").start()
    try:
        for node in cluster.nodes:
            node.stop()
        broker = make(cluster)
        try:
            await broker.start()  # does not raise
            assert not broker.healthy()
            with pytest.raises(BrokerUnavailable):
                await broker.publish("room", "alice", "too early")
            sink = Sink()
            await broker.subscribe("room", sink)
            await broker.join("room", "alice", "c1")
            for node in cluster.nodes:
                await asyncio.to_thread(node.start)
            await asyncio.to_thread(cluster.wait_healthy)
            await eventually(broker.healthy, timeout=15)
            sent = await broker.publish("room", "alice", "now")
            await sink.wait_for(lambda s: s.messages == [sent.message])
            async with asyncio.timeout(10):  # the join is written by the next heartbeat
                while await broker.users("room") != ["alice"]:  # noqa: ASYNC110 - Redis state
                    await asyncio.sleep(0.05)
        finally:
            await broker.close()
        wrong = RedisClusterBroker(cluster.url.replace("s3cret", "nope"), prefix="t")
        with pytest.raises(BrokerError, match="refused the credentials"):
            await wrong.start()
        await wrong.close()
    finally:
        cluster.cleanup()


async def test_tls_cluster_and_an_untrusted_certificate(tmp_path: Path) -> None:
    """rediss+cluster://: commands and sharded subscriptions over TLS, on the TLS ports the
    cluster announces; a certificate the node cannot verify stops it at start."""
    cluster = LocalCluster(masters=3, tls=make_tls_files(str(tmp_path))).start()
    try:
        broker = make(cluster)
        await broker.start()
        try:
            sink = Sink()
            await broker.subscribe("room", sink)
            sent = await broker.publish("room", "alice", "over TLS")
            await sink.wait_for(lambda s: s.messages == [sent.message])
            assert broker.healthy()
            link = next(iter(broker._live._links.values()))
            assert int(link.name.rpartition(":")[2]) in cluster.tls_ports.values()
        finally:
            await broker.close()
        url = cluster.url.partition("?")[0]  # the system's CAs only
        wrong = RedisClusterBroker(url, prefix="t", timeout=1.0)
        with pytest.raises(BrokerError, match="certificate"):
            await wrong.start()
        await wrong.close()
    finally:
        cluster.cleanup()


def test_scripts_publish_on_the_shard() -> None:
    assert "SPUBLISH" in sharded(PUBLISH) and "'PUBLISH'" not in sharded(PUBLISH)


async def test_rooms_live_in_one_slot_on_every_master(
    redis_cluster: LocalCluster, nodes: list[RedisClusterBroker]
) -> None:
    a, b = nodes
    rooms = [f"room{i}" for i in range(12)]
    sinks = {room: Sink() for room in rooms}
    for room, sink in sinks.items():
        await b.subscribe(room, sink)
    for room in rooms:
        await a.join(room, "alice", f"c-{room}")
        await a.publish(room, "alice", "hi", client_id="k")
    for sink in sinks.values():
        await sink.wait_for(lambda s: len(s.messages) == 1)
    masters = set()
    for room in rooms:
        port = redis_cluster.master_of_slot(slot_of(room))
        masters.add(port)
        c = redis_cluster.client(port)
        keys = [k for k in c.keys(f"{a.prefix}:{{{room}}}*")]
        assert len(keys) >= 5 and {slot_of(k) for k in keys} == {slot_of(room)}
        # the live channel is a sharded channel, subscribed on the room's own master only
        assert c.execute_command("PUBSUB", "SHARDNUMSUB", f"{a.prefix}:{{{room}}}")[1] == 1
        assert c.execute_command("PUBSUB", "NUMSUB", f"{a.prefix}:{{{room}}}")[1] == 0
        c.close()
    assert len(masters) == 3  # the rooms spread over every master
    assert await b.users(rooms[0]) == ["alice"]


async def test_connections_per_node_are_bounded(redis_cluster: LocalCluster) -> None:
    def counts() -> dict[int, list[dict[str, str]]]:
        out = {}
        for port in redis_cluster.master_ports():
            c = redis_cluster.client(port)
            out[port] = [x for x in c.client_list() if x["cmd"] != "client|list"]
            c.close()
        return out

    before = {port: len(v) for port, v in counts().items()}
    broker = make(redis_cluster, prefix="bounded", max_connections=4)
    await broker.start()
    try:
        for r in range(60):
            await broker.subscribe(f"room{r}", Sink())
        await asyncio.gather(
            *(broker.join(f"room{i % 60}", f"user{i}", f"c{i}") for i in range(1000))
        )
        await asyncio.gather(*(broker.publish(f"room{i % 60}", "u", "m") for i in range(500)))
        for port, clients in counts().items():
            ours = len(clients) - before[port]
            # the command pool, one sharded subscriber, one for reading the slot map
            assert ours <= 4 + 2, [(c["cmd"], c.get("ssub")) for c in clients]
            assert sum(1 for c in clients if int(c.get("ssub", 0)) > 0) == 1
        assert broker.healthy()
    finally:
        await broker.close()


async def retrying(call: Callable[[], Awaitable[T]], timeout: float = 10) -> T:
    """``call()`` again while the broker refuses (a failover in progress)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await call()
            except BrokerUnavailable:
                await asyncio.sleep(0.05)


class Flow:
    """A producer that publishes numbered messages with client ids to one room on ``node``
    and retries a refused one with the same id (as ``chatctl send`` does), recording what
    was acked; it stops at ``stop``."""

    def __init__(self, node: RedisClusterBroker, room: str) -> None:
        self.node = node
        self.room = room
        self.acked: list[Message] = []
        self.refused = 0
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                result = await self.node.publish(self.room, "alice", f"m{i}", client_id=f"c{i}")
            except BrokerUnavailable:
                self.refused += 1
                await asyncio.sleep(0.05)
                continue
            assert not result.duplicate or result.message.id == self.acked[-1].id + 1
            self.acked.append(result.message)
            i += 1
            await asyncio.sleep(0.005)  # a steady stream (pacing, not synchronisation)

    async def finish(self, at_least: int) -> list[Message]:
        async with asyncio.timeout(30):
            while len(self.acked) < at_least:  # noqa: ASYNC110 - waits for the producer
                await asyncio.sleep(0.02)
        self.stop.set()
        await self.task
        return self.acked


def assert_delivered_exactly(sink: Sink, acked: list[Message]) -> None:
    got = sink.messages
    assert [m.id for m in got] == list(range(1, len(got) + 1)), "gap, repeat or re-order"
    assert got[: len(acked)] == acked


async def test_slot_migration_while_messages_flow(replicated: LocalCluster) -> None:
    source = replicated.master_ports()[0]
    target = replicated.master_ports()[1]
    room = room_in_slot(replicated.first_slot(source))
    sender, receiver = make(replicated), make(replicated)
    await sender.start()
    await receiver.start()
    try:
        sink = Sink()
        await receiver.subscribe(room, sink)
        flow = Flow(sender, room)
        await sink.wait_for(lambda s: len(s.messages) >= 30)
        await asyncio.to_thread(replicated.reshard, source, target)
        assert replicated.master_of_slot(slot_of(room)) == target
        count = len(flow.acked)
        await sink.wait_for(lambda s: len(s.messages) >= count + 30)
        acked = await flow.finish(count + 30)
        await sink.wait_for(lambda s: len(s.messages) >= len(acked), timeout=10)
        assert_delivered_exactly(sink, acked)
        history = await receiver.history(room, since=0, limit=1000)
        assert history.messages == acked and history.complete
        await eventually(receiver.healthy)
        # the subscription followed the slot to its new master
        c = replicated.client(target)
        assert c.execute_command("PUBSUB", "SHARDNUMSUB", f"t:{{{room}}}")[1] == 1
        c.close()
    finally:
        await sender.close()
        await receiver.close()


async def test_master_failover_loses_nothing_acked_when_waiting_for_a_replica(
    replicated: LocalCluster,
) -> None:
    master = replicated.master_ports()[0]
    room = room_in_slot(replicated.first_slot(master))
    sender = make(replicated, wait_replicas=1)
    receiver = make(replicated)
    await sender.start()
    await receiver.start()
    try:
        sink = Sink()
        await receiver.subscribe(room, sink)
        flow = Flow(sender, room)
        await sink.wait_for(lambda s: len(s.messages) >= 30)
        new_master = await asyncio.to_thread(replicated.fail_master, master)
        # it has no replica left to wait for until the old master is back, as its replica
        await asyncio.to_thread(replicated.node(master).start)
        await asyncio.to_thread(replicated.wait_healthy)
        count = len(flow.acked)
        await sink.wait_for(lambda s: len(s.messages) >= count + 30, timeout=20)
        acked = await flow.finish(count + 30)
        await sink.wait_for(lambda s: len(s.messages) >= len(acked), timeout=10)
        assert flow.refused > 0  # it was refused while no master served the slot
        assert_delivered_exactly(sink, acked)
        assert not any(isinstance(e, Reset) for e in sink.events)
        history = await receiver.history(room, since=0, limit=1000)
        assert history.messages == acked and history.complete
        assert replicated.master_of_slot(slot_of(room)) == new_master
        await eventually(lambda: receiver.healthy() and sender.healthy())
    finally:
        await sender.close()
        await receiver.close()


async def test_without_waiting_a_failover_can_lose_an_acked_message(
    replicated: LocalCluster,
) -> None:
    """The trade-off --redis-wait-replicas exists for: replication is asynchronous, so a
    master can ack a message and die before its replica has it. With waiting, the same
    message is refused instead of acked."""
    master = replicated.master_ports()[0]
    replica = next(s["replicas"][0] for s in replicated.shards() if s["master"] == master)
    room = room_in_slot(replicated.first_slot(master))
    careful = make(replicated, wait_replicas=1, timeout=0.6)
    hasty, receiver = make(replicated), make(replicated)
    for b in (careful, hasty, receiver):
        await b.start()
    try:
        sink = Sink()
        await receiver.subscribe(room, sink)
        first = await careful.publish(room, "alice", "replicated", client_id="a")
        replica_proc = replicated.node(replica).proc
        assert replica_proc is not None
        # the replica falls behind: stopped, and cut off so that nothing queues up for it
        replica_proc.send_signal(signal.SIGSTOP)
        try:
            c = replicated.client(master)
            c.execute_command("CLIENT", "KILL", "TYPE", "replica")
            c.close()
            with pytest.raises(BrokerUnavailable, match="replicas"):
                await careful.publish(room, "alice", "refused", client_id="b")
            acked = await hasty.publish(room, "alice", "acked, then lost", client_id="c")
            assert acked.message.id == 3
            await sink.wait_for(lambda s: len(s.messages) == 3)
            replicated.kill(master)
        finally:
            replica_proc.send_signal(signal.SIGCONT)
        await asyncio.to_thread(replicated.wait_healthy, 30)
        history = await retrying(lambda: receiver.history(room, since=0, limit=10))
        assert [m.id for m in history.messages] == [first.message.id]  # 2 and 3 are gone
        # the subscribers are told their ids restart rather than silently diverging
        after = await retrying(lambda: hasty.publish(room, "alice", "after", client_id="d"))
        await sink.wait_for(lambda s: any(isinstance(e, Reset) for e in s.events), timeout=10)
        await sink.wait_for(lambda s: s.messages[-1] == after.message, timeout=10)
    finally:
        for b in (careful, hasty, receiver):
            await b.close()
