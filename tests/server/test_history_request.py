"""The ``history`` request on a real server: pages of older messages, ``more``, the limit cap,
bad fields, the rate limit, read-only connections, and pages cut to the output bound."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from chatctl.server import ChatServer
from chatctl.server.limits import RateSettings
from support.helpers import client, make_server, recv_type


async def ask(ws: ClientConnection, **fields: Any) -> dict[str, Any]:
    """Send a history request and return its answer (the room's other frames skipped)."""
    await ws.send(json.dumps({"type": "history", **fields}))
    return await recv_type(ws, "history")


def ids(page: dict[str, Any]) -> list[int]:
    return [m["id"] for m in page["messages"]]


async def publish(ws: ClientConnection, n: int, *, size: int = 0) -> None:
    """Send ``n`` messages and wait for their acks."""
    for i in range(n):
        text = f"m{i + 1}" + "x" * size
        await ws.send(json.dumps({"message": text, "client_id": f"c{i}"}))
    for _ in range(n):
        await recv_type(ws, "ack")


async def recv_json_of(ws: ClientConnection, types: tuple[str, ...]) -> dict[str, Any]:
    """The next frame of one of ``types``."""
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] in types:
            return dict(frame)


async def test_pages_back_through_the_room_oldest_first(server: ChatServer) -> None:
    async with client(server.port, "ops", "alice") as alice:
        welcome = await recv_type(alice, "welcome")
        await publish(alice, 7)
        async with client(server.port, "ops", "bob") as bob:
            await recv_type(bob, "welcome")
            newest = await ask(bob, limit=3, client_id="h1")
            assert ids(newest) == [5, 6, 7] and newest["more"] is True
            assert newest["client_id"] == "h1" and newest["room"] == "ops"
            assert newest["epoch"] == welcome["epoch"]
            assert newest["messages"][0]["message"] == "m5" and newest["messages"][0]["ts"] > 0
            older = await ask(bob, before=5, limit=3)
            assert ids(older) == [2, 3, 4] and older["more"] is True and "client_id" not in older
            oldest = await ask(bob, before=2, limit=3)
            assert ids(oldest) == [1] and oldest["more"] is False
            assert (await ask(bob, before=1))["messages"] == []
            everything = await ask(bob)  # default limit 50
            assert ids(everything) == list(range(1, 8)) and everything["more"] is False


async def test_an_empty_room_answers_an_empty_page(server: ChatServer) -> None:
    async with client(server.port, "quiet", "alice") as ws:
        await recv_type(ws, "welcome")
        page = await ask(ws, limit=10, client_id="e")
        assert page["messages"] == [] and page["more"] is False and page["client_id"] == "e"


async def test_history_is_what_the_server_keeps() -> None:
    async with make_server(history_size=4) as srv, client(srv.port, "ops", "alice") as ws:
        await recv_type(ws, "welcome")
        await publish(ws, 9)
        page = await ask(ws, limit=10)
        assert ids(page) == [6, 7, 8, 9] and page["more"] is False
        assert (await ask(ws, before=6))["messages"] == []


async def test_a_limit_over_200_is_read_as_200() -> None:
    srv = make_server(history_size=300, rates=RateSettings(conn_rate=0, user_rate=0))
    async with srv, client(srv.port, "ops", "alice") as ws:
        await recv_type(ws, "welcome")
        for i in range(250):  # straight into the broker: the page is what is tested
            await srv.broker.publish("ops", "bob", f"b{i}")
        page = await ask(ws, limit=1000)
        assert ids(page) == list(range(51, 251)) and page["more"] is True


async def test_bad_fields_are_invalid_field_errors_and_the_connection_stays(
    server: ChatServer,
) -> None:
    async with client(server.port, "ops", "alice") as ws:
        await recv_type(ws, "welcome")
        for bad in ({"limit": 0}, {"limit": "5"}, {"limit": 2.5}, {"before": 0}, {"before": True}):
            await ws.send(json.dumps({"type": "history", "client_id": "bad", **bad}))
            error = await recv_type(ws, "error")
            assert error["code"] == "invalid_field" and error["client_id"] == "bad", bad
        assert (await ask(ws, limit=1))["messages"] == []


async def test_a_request_takes_a_frame_rate_token() -> None:
    srv = make_server(rates=RateSettings(conn_rate=0.5, conn_burst=2, abuse_burst=1000))
    async with srv, client(srv.port, "ops", "alice") as ws:
        await recv_type(ws, "welcome")
        for n in range(3):
            await ws.send(json.dumps({"type": "history", "client_id": f"h{n}"}))
        answers = [await recv_json_of(ws, ("history", "error")) for _ in range(3)]
        assert [a["type"] for a in answers] == ["history", "history", "error"]
        assert answers[2]["code"] == "rate_limited" and answers[2]["client_id"] == "h2"
        assert answers[2]["retry_after"] > 0


async def test_a_read_only_unlisted_connection_may_ask(server: ChatServer) -> None:
    async with client(server.port, "ops", "alice") as alice:
        await recv_type(alice, "welcome")
        await publish(alice, 3)
        async with client(
            server.port, "ops", "script", receive="0", presence="0", history="0"
        ) as script:
            welcome = await recv_type(script, "welcome")
            assert welcome["history"] == [] and "script" not in welcome["users"]
            assert ids(await ask(script, limit=2)) == [2, 3]


async def test_a_page_too_big_for_the_output_bound_is_cut_from_the_oldest_end() -> None:
    srv = make_server(max_pending_bytes=20_000)
    async with srv, client(srv.port, "ops", "alice", receive="0", history="0") as ws:
        await recv_type(ws, "welcome")
        await publish(ws, 8, size=4000)  # 8 frames of about 4,100 bytes: 4 fit in 20,000
        page = await ask(ws, limit=8)
        assert ids(page) == [5, 6, 7, 8] and page["more"] is True
        assert ids(await ask(ws, before=5, limit=8)) == [1, 2, 3, 4]
