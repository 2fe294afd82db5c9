"""A Redis without persistence restarted under a connected sender: the room numbers from 1
again under a new epoch, and the sender's ack says which (issue 23: `chatctl bench chaos
--broker redis --seed 30019`, a sender with ``receive=0`` acked "id 2" that receivers had
already seen as another message of the old epoch)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatctl.broker.redis import RedisBroker
from chatctl.server import ChatServer, ServerSettings
from support.helpers import RedisServer, client, recv_json, recv_type, verifier

pytestmark = [pytest.mark.redis]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=False).start()
    try:
        yield server
    finally:
        server.cleanup()


async def acked(ws: object, text: str) -> dict[str, object]:
    """Send ``text`` until it is acked (refused while Redis is unreachable); the ack."""
    while True:
        await ws.send(f'{{"type":"message","message":"{text}","client_id":"{text}"}}')  # type: ignore[attr-defined]
        while (frame := await recv_json(ws))["type"] not in ("ack", "error"):  # type: ignore[arg-type]
            pass
        if frame["type"] == "ack":
            return frame


async def test_an_ack_after_the_room_lost_its_history_carries_the_new_epoch(
    redis: RedisServer,
) -> None:
    broker = RedisBroker(redis.url, prefix="wipe", health_interval=0.2, timeout=1)
    async with ChatServer(ServerSettings(port=0), verifier(), broker) as srv:
        async with client(srv.port, "ops", "alice", receive=0, presence=0) as ws:
            welcome = await recv_type(ws, "welcome")
            first = await acked(ws, "before")
            assert (first["id"], first["epoch"]) == (1, welcome["epoch"])
            redis.restart()  # no AOF, no RDB: it comes back empty
            after = await acked(ws, "after")
        async with client(srv.port, "ops", "bob") as reader:
            now = await recv_type(reader, "welcome")
    # the same id as "before", in another epoch: the ack must not let it pass for the old one
    assert after["id"] == 1
    assert after["epoch"] == now["epoch"] != welcome["epoch"]
    assert [m["message"] for m in now["history"]] == ["after"]
