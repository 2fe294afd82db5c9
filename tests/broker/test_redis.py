"""What only the Redis broker has to get right: several nodes on one Redis, key layout, bounded
connections, outages and catch-up. Every test runs its own redis-server on a free port."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from chatctl.broker import Gap, Reset
from chatctl.broker.redis.broker import RedisBroker
from chatctl.errors import BrokerError, BrokerUnavailable
from chatctl.protocol import Message, Presence
from support.brokers import Sink, eventually
from support.helpers import RedisServer, free_port, make_tls_files

pytestmark = pytest.mark.redis


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def nodes(redis: RedisServer) -> AsyncIterator[list[RedisBroker]]:
    """Two brokers on one Redis: what two ``chatctl serve`` processes would hold."""
    brokers = [
        RedisBroker(redis.url, prefix="t", history_size=1000, health_interval=0.2, timeout=1)
        for _ in range(2)
    ]
    for b in brokers:
        await b.start()
    try:
        yield brokers
    finally:
        for b in brokers:
            await b.close()


async def test_one_room_across_nodes_same_ids_same_order(nodes: list[RedisBroker]) -> None:
    a, b = nodes
    sinks = [Sink(), Sink()]
    await a.subscribe("lobby", sinks[0])
    await b.subscribe("lobby", sinks[1])
    results = await asyncio.gather(
        *(node.publish("lobby", f"u{i}", f"m{i}") for i in range(40) for node in (a, b))
    )
    assert sorted(r.message.id for r in results) == list(range(1, 81))
    for sink in sinks:
        await sink.wait_for(lambda s: len(s.messages) >= 80)
    assert [m.id for m in sinks[0].messages] == list(range(1, 81))
    assert sinks[0].messages == sinks[1].messages


async def test_duplicate_client_id_across_nodes(nodes: list[RedisBroker]) -> None:
    a, b = nodes
    first = await a.publish("room", "alice", "hi", client_id="k1")
    again = await b.publish("room", "alice", "hi", client_id="k1")
    assert again.duplicate and again.message == first.message


async def test_keys_share_the_room_hash_tag_and_prefix(
    redis: RedisServer, nodes: list[RedisBroker]
) -> None:
    a, _ = nodes
    await a.publish("team.ops-1", "alice", "hi", client_id="c")
    await a.join("team.ops-1", "alice", "conn-1")
    keys = set(redis.client().keys("*"))
    keys.remove("t:rooms")  # the room directory of GET /rooms, a key of its own
    assert keys and all(k.startswith("t:{team.ops-1}:") for k in keys), keys
    with pytest.raises(ValueError):
        await a.publish("bad{room}", "alice", "x")
    with pytest.raises(ValueError):
        RedisBroker(redis.url, prefix="a{b}")


async def test_connections_are_bounded_whatever_the_rooms_and_clients(
    redis: RedisServer,
) -> None:
    before = len(redis.client().client_list())
    broker = RedisBroker(redis.url, prefix="t", max_connections=4)
    await broker.start()
    try:
        for r in range(100):
            await broker.subscribe(f"room{r}", Sink())
        await asyncio.gather(
            *(broker.join(f"room{i % 100}", f"user{i}", f"c{i}") for i in range(2000))
        )
        await asyncio.gather(*(broker.publish(f"room{i % 100}", "u", "m") for i in range(500)))
        clients = redis.client().client_list()
        ours = len(clients) - before - 1  # minus the inspecting client itself
        assert ours <= 4 + 1, clients
        assert sum(1 for c in clients if int(c["sub"]) > 0) == 1
        assert broker.healthy()
    finally:
        await broker.close()


async def test_outage_refuses_then_catches_up_exactly_once(
    redis: RedisServer, nodes: list[RedisBroker]
) -> None:
    a, b = nodes
    sink = Sink()
    await b.subscribe("room", sink)
    acked: list[int] = []
    for i in range(10):
        acked.append((await a.publish("room", "alice", f"before{i}")).message.id)
    redis.stop()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        await a.publish("room", "alice", "during")
    assert time.monotonic() - started < 1.0
    await eventually(lambda: not a.healthy() and not b.healthy())
    redis.start()
    # a reconnects and stores; b must get these whether or not its pub/sub is back yet
    async with asyncio.timeout(10):
        while len(acked) < 30:
            try:
                acked.append((await a.publish("room", "alice", f"after{len(acked)}")).message.id)
            except BrokerUnavailable:
                await asyncio.sleep(0.05)
    await sink.wait_for(lambda s: len(s.messages) >= 30)
    await eventually(lambda: a.healthy() and b.healthy())
    assert [m.id for m in sink.messages] == acked == list(range(1, 31))


async def test_dropped_subscription_catches_up_from_the_stream(
    redis: RedisServer, nodes: list[RedisBroker]
) -> None:
    a, b = nodes
    sink = Sink()
    await b.subscribe("room", sink)

    async def produce() -> None:
        for i in range(300):
            await a.publish("room", "alice", f"m{i}")
            await asyncio.sleep(0.002)  # a steady stream (pacing, not synchronisation)

    producer = asyncio.create_task(produce())
    for seen in (20, 100, 200):  # cut b's pub/sub connection while a keeps publishing
        await sink.wait_for(lambda s, seen=seen: len(s.messages) >= seen)  # type: ignore[misc]
        redis.client().client_kill_filter(_type="pubsub")
    await producer
    await a.publish("room", "alice", "marker")
    await sink.wait_for(lambda s: bool(s.messages) and s.messages[-1].text == "marker")
    assert [m.id for m in sink.messages] == list(range(1, 302))
    assert b._live.reconnects == 3


async def test_health_follows_a_hung_redis(redis: RedisServer, nodes: list[RedisBroker]) -> None:
    a, _ = nodes
    await a.subscribe("room", Sink())
    assert a.healthy()
    redis.pause()  # sockets stay open, nothing answers: only the pub/sub ping notices
    try:
        await eventually(lambda: not a.healthy(), timeout=5)
    finally:
        redis.resume()
    await eventually(lambda: a.healthy(), timeout=10)
    result = await a.publish("room", "alice", "still here")
    assert result.message.id == 1


async def test_lost_redis_data_gives_a_new_epoch() -> None:
    redis = RedisServer(persistent=False).start()
    broker = RedisBroker(redis.url, prefix="t", health_interval=0.2, timeout=1)
    await broker.start()
    try:
        await broker.publish("room", "alice", "one")
        before = await broker.history("room", since=None, limit=10)
        redis.restart()  # no persistence: everything is gone
        async with asyncio.timeout(10):
            while True:
                try:
                    after = await broker.history("room", since=1, limit=10)
                    break
                except BrokerUnavailable:
                    await asyncio.sleep(0.05)
        assert after.epoch != before.epoch
        assert after.last_id == 0
        # and `since=1` from the old epoch is beyond this one: not complete
        assert not after.complete
    finally:
        await broker.close()
        redis.cleanup()


async def test_presence_spans_nodes_and_expires_without_heartbeat(redis: RedisServer) -> None:
    a = RedisBroker(redis.url, prefix="t", presence_ttl=1.0)
    b = RedisBroker(redis.url, prefix="t", presence_ttl=1.0)
    await a.start()
    await b.start()
    try:
        sink = Sink()
        await b.subscribe("room", sink)
        await a.join("room", "alice", "a-1")
        await b.join("room", "bob", "b-1")
        assert await a.users("room") == await b.users("room") == ["alice", "bob"]
        await sink.wait_for(lambda s: len(s.presence) >= 2)
        # a dies without a goodbye: its heartbeat stops, b's heartbeat reaps alice
        assert a._heartbeat is not None
        a._heartbeat.cancel()
        await sink.wait_for(lambda s: len(s.presence) >= 3, timeout=5)
        assert [(p.user, p.event) for p in sink.presence] == [
            ("alice", "join"),
            ("bob", "join"),
            ("alice", "leave"),
        ]
        assert await b.users("room") == ["bob"]
    finally:
        await a.close()
        await b.close()


async def test_acl_user_in_the_url_and_a_unix_socket() -> None:
    """An ACL user limited to chatctl's keys and channels is enough, over TCP or a socket."""
    acl = ("--user", "chat", "on", ">s3cret", "~app:*", "&app:*", "+@all", "-@dangerous")
    redis = RedisServer(args=acl)
    redis.args += redis.unixsocket()
    redis.start()
    urls = [
        f"redis://chat:s3cret@127.0.0.1:{redis.port}/0",
        f"unix://chat:s3cret@{redis.socket_path}?db=0",
    ]
    try:
        for n, url in enumerate(urls):
            node, other = (RedisBroker(url, prefix="app") for _ in range(2))
            await node.start()
            await other.start()
            try:
                sink = Sink()
                await other.subscribe("room", sink)
                await node.join("room", "alice", "c1")
                sent = await node.publish("room", "alice", "hi", client_id=f"x{n}")
                await sink.wait_for(lambda s: bool(s.messages))
                assert sink.messages == [sent.message]
                assert await other.users("room") == ["alice"]
                assert (await other.history("room", since=None, limit=5)).messages
                assert node.healthy() and other.healthy()
            finally:
                await node.close()
                await other.close()
        wrong = RedisBroker(f"redis://chat:nope@127.0.0.1:{redis.port}/0", prefix="app")
        with pytest.raises(BrokerError, match="refused the credentials"):
            await wrong.start()
        await wrong.close()
    finally:
        redis.cleanup()


async def test_starts_while_redis_is_down_and_connects_when_it_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = RedisServer(persistent=True)  # not started yet
    broker = RedisBroker(redis.url, prefix="t", health_interval=0.2, timeout=0.5)
    try:
        await broker.start()  # does not raise: a node may come up before its Redis
        assert not broker.healthy()
        with pytest.raises(BrokerUnavailable):
            await broker.publish("room", "alice", "too early")
        sink = Sink()
        await broker.subscribe("room", sink)
        await broker.join("room", "alice", "c1")  # recorded once Redis is there
        redis.start()
        await eventually(broker.healthy)
        sent = await broker.publish("room", "alice", "now")
        await sink.wait_for(lambda s: bool(s.messages))
        assert sink.messages == [sent.message] and sent.message.id == 1
        await eventually(lambda: redis.client().hkeys("t:{room}:users") == ["alice"])
        assert sum("Redis unavailable" in r.getMessage() for r in caplog.records) == 1
    finally:
        await broker.close()
        redis.cleanup()


async def test_duplicate_of_a_trimmed_message_keeps_its_id(redis: RedisServer) -> None:
    broker = RedisBroker(redis.url, prefix="t", history_size=5)
    await broker.start()
    try:
        first = await broker.publish("room", "alice", "hello", client_id="early")
        for i in range(300):  # far past the history: the original entry is trimmed away
            await broker.publish("room", "bob", f"m{i}")
        assert (await broker.history("room", since=0, limit=100)).messages[0].id > 1
        again = await broker.publish("room", "alice", "hello", client_id="early")
        assert again.duplicate and again.message == first.message
    finally:
        await broker.close()


async def test_tls_with_a_ca_and_an_untrusted_server_refused_at_start() -> None:
    redis = RedisServer()
    tls = make_tls_files(redis.dir)
    tls_port = free_port()
    redis.args = ("--tls-port", str(tls_port), "--tls-cert-file", tls["cert"])
    redis.args += ("--tls-key-file", tls["key"], "--tls-ca-cert-file", tls["ca"])
    redis.args += ("--tls-auth-clients", "no")
    redis.start()
    try:
        broker = RedisBroker(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={tls['ca']}")
        await broker.start()
        try:
            sink = Sink()
            await broker.subscribe("room", sink)
            sent = await broker.publish("room", "alice", "over TLS")
            await sink.wait_for(lambda s: bool(s.messages))
            assert sink.messages == [sent.message] and broker.healthy()
        finally:
            await broker.close()
        untrusted = RedisBroker(f"rediss://127.0.0.1:{tls_port}/0")  # system CAs only
        with pytest.raises(BrokerError, match="certificate"):
            await untrusted.start()
        await untrusted.close()
    finally:
        redis.cleanup()


async def test_a_failing_subscriber_does_not_stop_the_feed(nodes: list[RedisBroker]) -> None:
    a, b = nodes
    sink = Sink()

    def flaky(event: Message | Presence | Reset | Gap) -> None:
        sink(event)
        if isinstance(event, Message) and event.id == 1:
            raise RuntimeError("subscriber bug")

    await b.subscribe("room", flaky)
    for i in range(3):
        await a.publish("room", "alice", f"m{i}")
    await sink.wait_for(lambda s: len(s.messages) >= 3)
    assert [m.id for m in sink.messages] == [1, 2, 3]
    assert b._live.reconnects == 0


async def test_room_lost_by_redis_restarts_its_ids_for_subscribers() -> None:
    redis = RedisServer(persistent=False).start()
    node, other = (RedisBroker(redis.url, prefix="t", health_interval=0.2) for _ in range(2))
    await node.start()
    await other.start()
    try:
        sink = Sink()
        await other.subscribe("fresh", sink)  # before the room exists: no epoch known yet
        for i in range(3):
            await node.publish("fresh", "alice", f"old{i}")
        await sink.wait_for(lambda s: len(s.messages) == 3)
        # no persistence: the room is gone, ids restart under a new epoch
        await asyncio.to_thread(redis.restart)
        both = (node, other)
        await eventually(lambda: all(b._live.reconnects and b.healthy() for b in both))
        for i in range(2):
            await node.publish("fresh", "alice", f"new{i}")
        await sink.wait_for(lambda s: len(s.messages) == 5)
        assert [(m.id, m.text) for m in sink.messages[3:]] == [(1, "new0"), (2, "new1")]
        # the subscriber was told the ids restart before the first message of the new epoch
        resets = [i for i, e in enumerate(sink.events) if isinstance(e, Reset)]
        first_new = next(
            i for i, e in enumerate(sink.events) if isinstance(e, Message) and e.text == "new0"
        )
        assert len(resets) == 1 and resets[0] < first_new
    finally:
        await node.close()
        await other.close()
        redis.cleanup()
