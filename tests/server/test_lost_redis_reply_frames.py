"""What a client hears when Redis ran a message's publish script but its reply was lost
(docs/protocol.md, ``broker_unavailable`` and "Order"): an ack when Redis answers again
within the broker's bound, else ``broker_unavailable`` marked ``"stored": "unknown"``, which
closes the order gate like any refusal. Found by ``chatctl bench chaos --broker redis``
(seeds 1000 and 1003)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from chatctl.broker.redis import RedisBroker
from chatctl.server import ChatServer, ServerSettings
from support.helpers import RedisServer, client, recv_json, verifier
from support.reply_cutter import ReplyCutter

pytestmark = [pytest.mark.redis]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    try:
        yield server
    finally:
        server.cleanup()


@asynccontextmanager
async def node(
    redis: RedisServer, resolve_for: float
) -> AsyncIterator[tuple[ChatServer, ReplyCutter]]:
    cutter = await ReplyCutter(redis.port).start()
    broker = RedisBroker(cutter.url, prefix="lost", timeout=0.5, resolve_for=resolve_for)
    try:
        async with ChatServer(ServerSettings(port=0), verifier(), broker) as server:
            yield server, cutter
    finally:
        await cutter.close()


async def answer(ws: ClientConnection, client_id: str) -> dict[str, Any]:
    """Send a message with ``client_id``; its ack or error frame."""
    await ws.send(f'{{"type":"message","message":"text {client_id}","client_id":"{client_id}"}}')
    while (frame := await recv_json(ws))["type"] not in ("ack", "error"):
        pass
    assert frame["client_id"] == client_id, frame
    return frame


async def test_a_message_whose_reply_is_lost_is_acked(redis: RedisServer) -> None:
    async with (
        node(redis, resolve_for=5) as (server, cutter),
        client(server.port, "room", "alice") as ws,
    ):
        assert (await answer(ws, "c1"))["id"] == 1
        cutter.arm()
        ack = await answer(ws, "c2")
        assert cutter.cuts == 1
        assert (ack["type"], ack["id"]) == ("ack", 2), ack
        assert (await answer(ws, "c3"))["id"] == 3


async def test_a_message_whose_outcome_stays_unknown_is_refused_as_maybe_stored(
    redis: RedisServer,
) -> None:
    async with node(redis, resolve_for=0.5) as (server, cutter):
        cutter.on_cut = redis.stop
        async with client(server.port, "room", "alice") as ws:
            assert (await answer(ws, "c1"))["id"] == 1
            cutter.arm()
            error = await answer(ws, "c2")
            assert (error["type"], error["code"]) == ("error", "broker_unavailable"), error
            assert error["stored"] == "unknown"
            blocked = await answer(ws, "c3")  # the order gate waits for c2
            assert (blocked["code"], blocked["blocked_by"]) == ("broker_unavailable", "c2")
            assert "stored" not in blocked  # c3 was never handed to Redis
            await asyncio.to_thread(redis.start)
            async with asyncio.timeout(15):
                while (again := await answer(ws, "c2"))["type"] != "ack":
                    assert "blocked_by" not in again, again
                    await asyncio.sleep(0.1)
            assert (again["id"], again["duplicate"]) == (2, True)  # it had been stored
            assert (await answer(ws, "c3"))["id"] == 3
