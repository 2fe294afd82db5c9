"""The bench's receive-only client against websockets' own server: what RFC 6455 asks of it
(the handshake, Pong for Ping, Close for Close) and every frame length the header can say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from chatctl.bench.rawclient import HandshakeFailed, open_receiver

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, *, refuse: int | None = None) -> AsyncIterator[str]:
    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        if refuse is None:
            return None
        return conn.respond(refuse, "no\n")

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws/room?x=1"


async def test_frames_of_every_length_arrive_whole_and_in_order() -> None:
    texts = ["a", "é" * 100, "x" * 70_000, '{"type":"message"}']
    seen_path: list[str] = []
    seen_auth: list[str] = []

    async def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        seen_path.append(conn.request.path)
        seen_auth.append(conn.request.headers["Authorization"])
        for t in texts:
            await conn.send(t)
        await conn.send(b"\x00\x01")  # binary: handed on too
        await conn.wait_closed()

    got: list[bytes] = []
    done = asyncio.Event()

    def on_text(data: bytes, arrived: float) -> None:
        got.append(data)
        if len(got) == len(texts) + 1:
            done.set()

    async with server(handler) as url:
        r = await open_receiver(url, {"Authorization": "Bearer t"}, on_text, timeout=5)
        await asyncio.wait_for(done.wait(), 5)
        r.close()
        await asyncio.wait_for(r.closed, 5)
    assert got == [t.encode() for t in texts] + [b"\x00\x01"]
    assert seen_path == ["/ws/room?x=1"]
    assert seen_auth == ["Bearer t"]


async def test_a_ping_is_answered_and_a_close_is_returned() -> None:
    pong: list[float] = []
    closed_with: list[int | None] = []

    async def handler(conn: ServerConnection) -> None:
        waiter = await conn.ping(b"abc")
        pong.append(await asyncio.wait_for(waiter, 5))  # the client's Pong, matched by data
        await conn.close(1001, "going away")  # completes only once the client echoes it
        closed_with.append(conn.close_code)

    lost = asyncio.Event()
    async with server(handler) as url:
        r = await open_receiver(url, {}, lambda data, arrived: None, timeout=5)
        r.on_close = lost.set
        await asyncio.wait_for(lost.wait(), 5)
    assert len(pong) == 1
    assert closed_with == [1001]


async def test_a_refused_handshake_says_its_status() -> None:
    async def handler(conn: ServerConnection) -> None:
        raise AssertionError("never upgraded")

    async with server(handler, refuse=401) as url:
        with pytest.raises(HandshakeFailed) as info:
            await open_receiver(url, {}, lambda data, arrived: None, timeout=5)
    assert info.value.status == 401
    assert str(info.value) == "HTTP 401"


async def test_only_ws_urls() -> None:
    with pytest.raises(ValueError, match="ws://"):
        await open_receiver("wss://example.invalid/ws/x", {}, lambda d, a: None, timeout=1)
