"""The Redis broker's live feed around an outage, where it lags behind the store: Redis is
back (publishes and history reads work over the command pool) while the feed still sleeps
out its reconnect backoff. Found by ``chatctl bench chaos --broker redis`` (seed 1004)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from chatctl.broker import Gap
from chatctl.broker.redis.broker import RedisBroker
from chatctl.errors import BrokerUnavailable
from chatctl.protocol import Message
from support.brokers import Sink, eventually
from support.helpers import RedisServer

pytestmark = pytest.mark.redis

T = TypeVar("T")

#: The feed's backoff after this many failed reconnects is min(4, 0.05 * 2**6) * [0.5, 1]
#: >= 1.6 s: the window in which it lags.
FAILED_RECONNECTS = 7


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    try:
        yield server
    finally:
        server.cleanup()


async def retried(call: Callable[[], Awaitable[T]]) -> T:
    """``call()`` until Redis answers (the first tries after a restart may find dead
    pooled connections)."""
    async with asyncio.timeout(10):
        while True:
            try:
                return await call()
            except BrokerUnavailable:
                await asyncio.sleep(0.05)


async def test_a_room_subscribed_while_redis_is_down_gets_all_after_its_history(
    redis: RedisServer,
) -> None:
    """The server subscribes a room (a first client's attach) while Redis is down, reads
    its welcome's history once Redis is back, and more is published before the feed
    reconnects: the feed must deliver from where that history read stopped, not from
    wherever the room is when it reconnects."""
    node = RedisBroker(redis.url, prefix="t", health_interval=0.2, timeout=1, backoff_cap=4.0)
    publisher = RedisBroker(redis.url, prefix="t", timeout=1)
    await node.start()
    await publisher.start()
    try:
        for i in range(3):
            await publisher.publish("room", "alice", f"old{i}")
        await asyncio.to_thread(redis.stop)
        await eventually(lambda: node.reconnects >= FAILED_RECONNECTS, timeout=30)
        sink = Sink()
        await node.subscribe("room", sink)  # returns at once: Redis is down
        await asyncio.to_thread(redis.start)
        welcome = await retried(lambda: node.history("room", since=None, limit=10))
        assert welcome.last_id == 3
        for text in ("new0", "new1"):
            await retried(functools.partial(publisher.publish, "room", "bob", text))
        assert not node.healthy(), "the feed came back too early to test the lag"
        await sink.wait_for(lambda s: len(s.messages) >= 2, timeout=10)
        await eventually(node.healthy)
        await publisher.publish("room", "bob", "live")
        await sink.wait_for(lambda s: len(s.messages) >= 3)
        assert [m.id for m in sink.messages] == [4, 5, 6]
    finally:
        await publisher.close()
        await node.close()


async def test_a_node_refuses_publishes_until_its_feed_listens_again(redis: RedisServer) -> None:
    """After an outage Redis takes publishes before the node's feed has re-subscribed. A
    client re-sending what was refused meanwhile published a burst through that node, more
    than the stream keeps (``--history``), before the feed's catch-up read it: the node's own
    receivers never saw the messages trimmed in between (ids jumped; found by the send-order
    test's Redis restart). The node now refuses them, retry-able, until it listens again."""
    node = RedisBroker(
        redis.url, prefix="t", health_interval=0.2, timeout=1, backoff_cap=4.0, history_size=5
    )
    await node.start()
    try:
        sink = Sink()
        await node.subscribe("room", sink)
        await node.publish("room", "alice", "before")
        await sink.wait_for(lambda s: len(s.messages) >= 1)
        await asyncio.to_thread(redis.stop)
        await eventually(lambda: node.reconnects >= FAILED_RECONNECTS, timeout=30)
        await asyncio.to_thread(redis.start)
        refused = 0
        acked: list[int] = []
        for i in range(300):  # the client's backlog, re-sent as fast as it is taken
            while True:
                try:
                    acked.append((await node.publish("room", "alice", f"m{i}")).message.id)
                    break
                except BrokerUnavailable:
                    refused += 1
                    await asyncio.sleep(0.02)
        with contextlib.suppress(TimeoutError):  # a gap never fills: compare what came
            await sink.wait_for(lambda s: len(s.messages) >= 1 + len(acked), timeout=5)
        assert [m.id for m in sink.messages] == [1, *acked], "acked but never delivered here"
        assert acked == list(range(2, 302))
        assert refused, "the feed came back too early to test the lag"
    finally:
        await node.close()


async def test_a_feed_that_lagged_past_the_trimmed_stream_says_so_before_the_next_message(
    redis: RedisServer,
) -> None:
    """Another node publishes more than the stream keeps (``--history`` 5) while this node's
    feed sleeps out its reconnect backoff: the catch-up finds the first of them trimmed. Its
    subscriber used to get the later messages as if nothing was missing (ids jumped and no
    client learnt it missed acked messages); it now gets a ``Gap`` first."""
    node = RedisBroker(
        redis.url, prefix="t", health_interval=0.2, timeout=1, backoff_cap=4.0, history_size=5
    )
    other = RedisBroker(redis.url, prefix="t", timeout=1, history_size=5)
    await node.start()
    await other.start()
    try:
        sink = Sink()
        await node.subscribe("room", sink)
        await other.publish("room", "alice", "before")
        await sink.wait_for(lambda s: len(s.messages) >= 1)
        await asyncio.to_thread(redis.stop)
        await eventually(lambda: node.reconnects >= FAILED_RECONNECTS, timeout=30)
        await asyncio.to_thread(redis.start)
        for i in range(300):
            await retried(functools.partial(other.publish, "room", "bob", f"m{i}"))
        assert not node.healthy(), "the feed came back too early to test the lag"
        await sink.wait_for(lambda s: bool(s.messages) and s.messages[-1].id == 301, timeout=10)
        ids = [m.id for m in sink.messages]
        assert ids == sorted(set(ids)) and ids[0] == 1 and ids[1] > 2, ids
        after = next(i for i, e in enumerate(sink.events) if isinstance(e, Message) and e.id > 1)
        assert sink.events[after - 1] == Gap("room", 1, ids[1]), sink.events[: after + 1]
        assert [e for e in sink.events if isinstance(e, Gap)] == [Gap("room", 1, ids[1])]
    finally:
        await other.close()
        await node.close()
