"""A Redis restart (AOF on) while a real server has live subscribers and a publisher: no
connection gets an id twice, including one welcomed while the live feed still lags behind
the store (issue 23: `chatctl bench chaos --broker redis --seed 1005`).

After Redis comes back, welcomes work at once over the command pool, and so do other nodes'
publishes, while this node's pub/sub connection may still be in its reconnect backoff (its
own publishes are refused until it listens again): a welcome's history then runs ahead of
what the room's live feed delivered, and the feed's catch-up must not hand the welcomed
connection those messages a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

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


async def publish_elsewhere(node: RedisBroker, text: str) -> int:
    """Publish ``text`` through another node (a broker of its own on the same Redis) until
    Redis takes it (the first tries after a restart may find dead pooled connections)."""
    async with asyncio.timeout(10):
        while True:
            try:
                return (await node.publish("room", "sender", text, client_id=text)).message.id
            except BrokerUnavailable:
                await asyncio.sleep(0.05)


async def ids_until(ws: ClientConnection, last: int, seen: list[int]) -> list[int]:
    """Append the ids of the message frames ``ws`` gets to ``seen`` until ``last`` arrives."""
    async with asyncio.timeout(15):
        while not seen or seen[-1] < last:
            frame: dict[str, Any] = await recv_json(ws)
            if frame["type"] == "message":
                seen.append(frame["id"])
    return seen


async def test_no_id_twice_across_a_redis_restart(redis: RedisServer) -> None:
    async with AsyncExitStack() as stack:
        server, broker = await stack.enter_async_context(redis_node(redis))
        other = RedisBroker(redis.url, prefix="restart", timeout=1)
        await other.start()
        stack.push_async_callback(other.close)
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
        during = [await publish_elsewhere(other, f"during-{i}") for i in range(5)]
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
