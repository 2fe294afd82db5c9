"""``GET /rooms`` with the Redis broker lists the rooms of every node: two real ``chatctl
serve`` processes on a private redis-server, the real curl, real websockets clients."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from support.curl import curl
from support.helpers import RedisServer, ServeProcess, client, make_token, recv_type

pytestmark = [pytest.mark.redis]


@pytest.fixture
def two_nodes(redis_server: RedisServer) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    args = ("--redis-url", redis_server.url, "--redis-prefix", "rooms")
    a = ServeProcess(*args).start()
    try:
        b = ServeProcess(*args).start()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


async def test_a_room_with_members_only_on_node_b_is_listed_by_node_a(
    two_nodes: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = two_nodes
    async with (
        client(b.port, "ops", "alice") as alice,
        client(b.port, "ops", "bob") as bob,
        client(a.port, "general", "carol") as carol,
    ):
        for ws in (alice, bob, carol):
            await recv_type(ws, "welcome")
        await alice.send('{"message": "deploy done", "client_id": "c1"}')
        await recv_type(alice, "ack")
        answer = await curl(a.port, "/rooms", token=make_token("dave"))
        assert answer.status == 200
        rooms = [(r["room"], r["last_id"], r["users"]) for r in answer.json()["rooms"]]
        assert rooms == [("general", 0, 1), ("ops", 1, 2)]
        # the token's rooms still bound what it sees
        only = await curl(a.port, "/rooms", token=make_token("dave", rooms=["gen*"]))
        assert [r["room"] for r in only.json()["rooms"]] == ["general"]
    # once its members left, a room is no longer listed (its user count is 0); the leaves
    # are recorded as the servers see the connections close, so ask until they are
    async with asyncio.timeout(10):
        while (await curl(a.port, "/rooms", token=make_token("dave"))).json()["rooms"]:
            pass
