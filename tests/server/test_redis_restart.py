"""A Redis restart (AOF on) while a real server has live subscribers and a publisher: no
connection gets an id twice, including one welcomed while the live feed still lags behind
the store (issue 23: `chatctl bench chaos --broker redis --seed 1005`).

After Redis comes back, publishes and welcomes work at once over the command pool, while the
pub/sub connection may still be in its reconnect backoff: a welcome's history then runs
ahead of what the room's live feed delivered, and the feed's catch-up must not hand the
welcomed connection those messages a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chatctl.broker.redis import RedisBroker
from chatctl.errors import BrokerUnavailable
from chatctl.server import ChatServer, ServerSettings
from support.brokers import eventually
from support.helpers import RedisServer, client, recv_json, recv_type, verifier

pytestmark = [pytest.mark.redis]

#: The live feed's reconnect backoff grows to this cap (seconds) while Redis is down.
BACKOFF_CAP = 4.0
#: Failed reconnects to wait for before Redis comes back: the backoff then being slept is
#: min(BACKOFF_CAP, 0.05 * 2**6) * [0.5, 1] >= 1.6 s, the window in which the feed lags.
FAILED_RECONNECTS = 7


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    try:
        yield server
    finally:
        server.cleanup()


@asynccontextmanager
async def redis_node(redis: RedisServer) -> AsyncIterator[tuple[ChatServer, RedisBroker]]:
    broker = RedisBroker(
        redis.url, prefix="restart", health_interval=0.2, timeout=1, backoff_cap=BACKOFF_CAP
    )
    async with ChatServer(ServerSettings(port=0), verifier(), broker) as server:
        yield server, broker


async def publish(ws: ClientConnection, text: str) -> int:
    """Send ``text`` until it is acked (refused while Redis is unreachable); its id."""
    while True:
        await ws.send(f'{{"type":"message","message":"{text}","client_id":"{text}"}}')
        while (frame := await recv_json(ws))["type"] not in ("ack", "error"):
            pass
        if frame["type"] == "ack":
            return int(frame["id"])
        assert frame["code"] == "broker_unavailable", frame
        await asyncio.sleep(0.05)


async def ids_until(ws: ClientConnection, last: int, seen: list[int]) -> list[int]:
    """Append the ids of the message frames ``ws`` gets to ``seen`` until ``last`` arrives."""
    async with asyncio.timeout(15):
        while not seen or seen[-1] < last:
            frame: dict[str, Any] = await recv_json(ws)
            if frame["type"] == "message":
                seen.append(frame["id"])
    return seen


async def stored(broker: RedisBroker, text: str) -> int:
    """Publish ``text`` through ``broker`` (another node) until Redis takes it; its id."""
    async with asyncio.timeout(10):
        while True:
            try:
                return (await broker.publish("room", "other", text)).message.id
            except BrokerUnavailable:
                await asyncio.sleep(0.05)


async def test_no_id_twice_across_a_redis_restart(redis: RedisServer) -> None:
    other = RedisBroker(redis.url, prefix="restart", timeout=1)
    await other.start()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(other.close)
        server, broker = await stack.enter_async_context(redis_node(redis))
        reader = await stack.enter_async_context(client(server.port, "room", "reader"))
        sender = await stack.enter_async_context(client(server.port, "room", "sender"))
        welcome = await recv_type(reader, "welcome")
        await recv_type(sender, "welcome")
        before = [await publish(sender, f"before-{i}") for i in range(5)]
        old = await ids_until(reader, before[-1], [])

        await asyncio.to_thread(redis.stop)
        await eventually(lambda: broker.reconnects >= FAILED_RECONNECTS, timeout=30)
        await asyncio.to_thread(redis.start)
        # Redis is back, the live feed still sleeps out its backoff: another node stores
        # while it lags (this node refuses its own publishes until its feed listens again)
        during = [await stored(other, f"during-{i}") for i in range(5)]
        assert not broker.healthy(), "the live feed came back too early to test the lag"

        async with (
            client(server.port, "room", "fresh") as fresh,
            client(server.port, "room", "resumer", since=old[-1], epoch=welcome["epoch"]) as back,
        ):
            fresh_welcome = await recv_type(fresh, "welcome")
            back_welcome = await recv_type(back, "welcome")
            assert back_welcome["recovered"] is True
            assert [m["id"] for m in back_welcome["history"]] == during
            assert fresh_welcome["last_id"] == during[-1]
            await eventually(broker.healthy, timeout=15)  # the live feed catches up
            after = [await publish(sender, f"after-{i}") for i in range(3)]
            for ws, seen in (
                (reader, old),
                (fresh, [m["id"] for m in fresh_welcome["history"]]),
                (back, [m["id"] for m in back_welcome["history"]]),
            ):
                got = await ids_until(ws, after[-1], seen)
                assert len(got) == len(set(got)), f"an id delivered twice: {got}"
                assert got == sorted(got)
            assert old == before + during + after
        with contextlib.suppress(Exception):
            await sender.close()


async def test_a_gap_closes_only_the_connections_that_missed_it(redis: RedisServer) -> None:
    """Another node publishes more than the stream keeps (``--history`` 5) while this node's
    feed lags: its catch-up finds the first of them trimmed. The reader connected before
    the outage is closed with 1012 before any message after the hole; a client welcomed
    while the feed lagged (its welcome carried everything up to the newest id) missed
    nothing, stays connected and gets the next live message once."""
    broker = RedisBroker(
        redis.url,
        prefix="gap",
        health_interval=0.2,
        timeout=1,
        backoff_cap=BACKOFF_CAP,
        history_size=5,
    )
    other = RedisBroker(redis.url, prefix="gap", timeout=1, history_size=5)
    await other.start()
    settings = ServerSettings(port=0, history_size=5)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(other.close)
        server = await stack.enter_async_context(ChatServer(settings, verifier(), broker))
        reader = await stack.enter_async_context(client(server.port, "room", "reader"))
        await recv_type(reader, "welcome")
        await other.publish("room", "alice", "before")
        assert await ids_until(reader, 1, []) == [1]

        await asyncio.to_thread(redis.stop)
        await eventually(lambda: broker.reconnects >= FAILED_RECONNECTS, timeout=30)
        await asyncio.to_thread(redis.start)
        for i in range(300):  # another node: its publishes go on while this feed lags
            await stored(other, f"m{i}")
        fresh = await stack.enter_async_context(client(server.port, "room", "fresh"))
        fresh_welcome = await recv_type(fresh, "welcome")
        assert fresh_welcome["last_id"] == 301
        assert not broker.healthy(), "the live feed came back too early to test the lag"

        live: list[int] = []
        with contextlib.suppress(ConnectionClosed):
            while not live:  # until the node closes it, or delivers a message
                frame = await recv_json(reader, timeout=15)
                if frame["type"] == "message":
                    live.append(frame["id"])
        assert live == [], "delivered live after the hole (ids jumped from 1)"
        assert reader.close_code == 1012 and reader.close_reason is not None
        assert "missed" in reader.close_reason
        await eventually(broker.healthy, timeout=15)
        await other.publish("room", "alice", "after")
        welcomed = [m["id"] for m in fresh_welcome["history"]]
        assert welcomed[-1] == 301
        assert await ids_until(fresh, 302, list(welcomed)) == [*welcomed, 302]
