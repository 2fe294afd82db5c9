"""A publish whose script ran on Redis but whose reply never came back (the connection was
lost, or Redis was stopped, right after it ran) is resolved by the broker: it runs the
idempotent script again with the same client id and acks with the original id, instead of
refusing with "not stored". Found by ``chatctl bench chaos --broker redis`` (seeds 1000 and
1003: a message refused with ``broker_unavailable`` was delivered before it was sent again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from chatctl.broker.redis.broker import RedisBroker
from chatctl.errors import BrokerOutcomeUnknown, BrokerUnavailable
from support.helpers import RedisServer
from support.reply_cutter import ReplyCutter

pytestmark = pytest.mark.redis


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def cutter(redis: RedisServer) -> AsyncIterator[ReplyCutter]:
    proxy = await ReplyCutter(redis.port).start()
    try:
        yield proxy
    finally:
        await proxy.close()


def stored(redis: RedisServer, room: str) -> list[tuple[str, str]]:
    """(client id, text) of every message in the room's stream, read from Redis itself."""
    entries = redis.client().xrange(f"t:{{{room}}}:log")
    return [(fields["c"], fields["t"]) for _, fields in entries]


async def test_a_publish_whose_reply_is_lost_is_acked_with_its_original_id(
    redis: RedisServer, cutter: ReplyCutter
) -> None:
    broker = RedisBroker(cutter.url, prefix="t", timeout=1, resolve_for=5)
    await broker.start()
    try:
        await broker.publish("room", "alice", "first", client_id="c1")  # loads the script
        cutter.arm()
        result = await broker.publish("room", "alice", "second", client_id="c2")
        assert cutter.cuts == 1, "the reply was not cut: the test did not test anything"
        assert result.message.id == 2
        assert result.message.client_id == "c2"
        assert result.duplicate  # the lost attempt stored it; the re-run found it
        assert stored(redis, "room") == [("c1", "first"), ("c2", "second")]
        again = await broker.publish("room", "alice", "second", client_id="c2")
        assert (again.message.id, again.duplicate) == (2, True)
    finally:
        await broker.close()


async def test_a_publish_whose_reply_is_lost_as_redis_restarts_is_acked(
    redis: RedisServer, cutter: ReplyCutter
) -> None:
    """Redis is stopped (SIGTERM) right after the script ran, and comes back from its AOF."""
    broker = RedisBroker(cutter.url, prefix="t", timeout=1, resolve_for=8)
    await broker.start()
    tasks: set[asyncio.Future[None]] = set()

    async def start_again() -> None:
        await asyncio.sleep(0.3)  # the broker's first re-runs find the connection refused
        await asyncio.to_thread(redis.start)
        await cutter.listen_again()

    def restart() -> None:
        redis.stop()  # before the proxy closes the broker's connections: no reply can come
        cutter.stop_listening()
        tasks.add(asyncio.ensure_future(start_again()))

    cutter.on_cut = restart
    try:
        await broker.publish("room", "alice", "first", client_id="c1")
        cutter.arm()
        result = await broker.publish("room", "alice", "second", client_id="c2")
        assert cutter.cuts == 1 and tasks
        assert (result.message.id, result.message.client_id) == (2, "c2")
        assert stored(redis, "room") == [("c1", "first"), ("c2", "second")]
    finally:
        await asyncio.gather(*tasks)
        await broker.close()


async def test_a_publish_whose_outcome_stays_unknown_is_not_refused_as_not_stored(
    redis: RedisServer, cutter: ReplyCutter
) -> None:
    """Redis stops right after the script ran and stays down past the bound: the publish
    fails with BrokerOutcomeUnknown ("maybe stored"); once Redis is back, the re-send with
    the same client id is acked as a duplicate of the one stored."""
    broker = RedisBroker(cutter.url, prefix="t", timeout=0.5, resolve_for=1)
    await broker.start()
    cutter.on_cut = redis.stop
    try:
        await broker.publish("room", "alice", "first", client_id="c1")
        cutter.arm()
        with pytest.raises(BrokerOutcomeUnknown):
            await broker.publish("room", "alice", "second", client_id="c2")
        assert cutter.cuts == 1
        await asyncio.to_thread(redis.start)
        async with asyncio.timeout(10):
            while True:
                try:
                    again = await broker.publish("room", "alice", "second", client_id="c2")
                    break
                except BrokerUnavailable:
                    await asyncio.sleep(0.05)
        assert (again.message.id, again.duplicate) == (2, True)
        assert stored(redis, "room") == [("c1", "first"), ("c2", "second")]
    finally:
        await broker.close()


async def test_a_publish_without_client_id_whose_reply_is_lost_is_not_run_again(
    redis: RedisServer, cutter: ReplyCutter
) -> None:
    """Without a client id a re-run could store the message twice: the broker says it does
    not know instead."""
    broker = RedisBroker(cutter.url, prefix="t", timeout=1, resolve_for=5)
    await broker.start()
    try:
        await broker.publish("room", "alice", "first")
        cutter.arm()
        with pytest.raises(BrokerOutcomeUnknown):
            await broker.publish("room", "alice", "second")
        assert [t for _, t in stored(redis, "room")] == ["first", "second"]
    finally:
        await broker.close()


async def test_a_publish_to_a_stopped_redis_is_refused_as_not_stored_at_once(
    redis: RedisServer,
) -> None:
    """Connection refused: nothing was sent, so nothing to resolve and no "maybe"."""
    broker = RedisBroker(redis.url, prefix="t", timeout=1, resolve_for=5)
    await broker.start()
    try:
        await broker.publish("room", "alice", "first", client_id="c1")
        await asyncio.to_thread(redis.stop)
        loop = asyncio.get_running_loop()
        for _ in range(3):  # the first may fail on a pooled connection Redis closed
            started = loop.time()
            with pytest.raises(BrokerUnavailable) as refused:
                await broker.publish("room", "alice", "second", client_id="c2")
        assert not isinstance(refused.value, BrokerOutcomeUnknown)
        assert loop.time() - started < 1
    finally:
        await broker.close()
