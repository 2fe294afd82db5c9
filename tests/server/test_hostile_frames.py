"""Hostile frames on a live server (issue 11, items 6 and 8): only strict JSON leaves the server,
invisible-only messages are blank, and a non-UTF-8 text frame closes with 1007 as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chatctl.server import ChatServer
from support.helpers import client, recv_type

PROTOCOL_DOC = Path(__file__).parents[2] / "docs" / "protocol.md"


def strict_json(data: str | bytes) -> Any:
    """Parse like a browser's ``JSON.parse``: ``NaN`` and ``Infinity`` are syntax errors."""

    def refuse(name: str) -> None:
        raise AssertionError(f"the server sent {name}, which JSON.parse rejects: {data!r}")

    return json.loads(data, parse_constant=refuse)


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = strict_json(await ws.recv())
    return frame


@pytest.mark.parametrize("data", ["1e999", "NaN", "-Infinity", "[1, Infinity]", '{"x": -1e400}'])
async def test_non_finite_numbers_are_refused_and_never_echoed(
    server: ChatServer, data: str
) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(f'{{"type": "ping", "data": {data}}}')
        error = await next_frame(ws)  # before the fix: {"type":"pong","data":Infinity}
        assert (error["type"], error["code"]) == ("error", "invalid_json")
        assert error["reason"].startswith("invalid JSON: ")
        await ws.send('{"type": "ping", "data": 1.5e308}')  # the connection lives on
        assert await next_frame(ws) == {"type": "pong", "data": 1.5e308}


@pytest.mark.parametrize("text", ["\u200b", "\u0000", "\u200b\u2060\u200d", "\u202e \u202c"])
async def test_invisible_only_messages_are_refused(server: ChatServer, text: str) -> None:
    async with (
        client(server.port, "general", "alice") as alice,
        client(server.port, "general", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        await alice.send(json.dumps({"message": text, "client_id": "c1"}))
        error = await recv_type(alice, "error")  # before the fix: stored, acked, delivered
        assert (error["code"], error["client_id"]) == ("invalid_field", "c1")
        assert error["reason"] in ("message is empty", "message contains U+0000 (NUL)")
        await alice.send(json.dumps({"message": "visible", "client_id": "c2"}))
        assert (await recv_type(bob, "message"))["message"] == "visible"  # the first one


async def test_nul_inside_text_is_refused_and_emoji_sequences_kept(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": "before\u0000after", "client_id": "n"}))
        assert (await recv_type(ws, "error"))["reason"] == "message contains U+0000 (NUL)"
        for text in ("👩\u200d💻", "🏳️\u200d🌈", "zero\u200bwidth"):
            await ws.send(json.dumps({"message": text, "client_id": text}))
            assert (await recv_type(ws, "message"))["message"] == text


async def test_non_utf8_text_closes_1007_as_documented(server: ChatServer) -> None:
    """RFC 6455 (8.1): a text frame that is not UTF-8 fails the connection with 1007; websockets
    does it before chatctl sees the frame. docs/protocol.md says so (it promised invalid_json)."""
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(b'{"message": "\xff"}', text=True)
        with pytest.raises(ConnectionClosed) as info:
            await next_frame(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1007
    doc = PROTOCOL_DOC.read_text()
    assert re.search(r"^\| 1007 \| .*UTF-8", doc, re.MULTILINE)
    assert "not UTF-8" not in doc.split("| `invalid_json` |")[1].split("\n")[0]
