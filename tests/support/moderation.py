"""Helpers of the moderation tests: a moderator's token, answers and closes awaited as
frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.helpers import client, make_token, recv_type

MOD = make_token("alice", mod_rooms=["*"])


async def answer(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send ``frame``; the first answer that is not room traffic."""
    await ws.send(json.dumps(frame))
    while True:
        got = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if got["type"] not in ("message", "presence", "presence_batch", "limits"):
            return dict(got)


async def announcement(ws: ClientConnection) -> dict[str, Any]:
    """The next moderation message ``ws`` gets."""
    while True:
        got = await recv_type(ws, "message")
        if got["kind"] == "moderation":
            return got


async def closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """The close code and reason ``ws`` is closed with (frames before it are skipped)."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    rcvd = info.value.rcvd
    assert rcvd is not None
    return rcvd.code, rcvd.reason


async def refused(port: int, room: str, user: str) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        async with client(port, room, user):
            pass
    response = info.value.response
    return response.status_code, response.body.decode()
