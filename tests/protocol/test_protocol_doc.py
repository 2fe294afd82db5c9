"""docs/protocol.md's complete session, replayed against a real server frame by frame."""

from __future__ import annotations

import json
import re
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from chatctl.server import ChatServer
from support.helpers import make_token, recv_json

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
SECTION = DOC.split("\n## A complete session\n", 1)[1]
TRANSCRIPT = re.search(r"```text\n(.*?)```", SECTION, flags=re.S).group(1)  # type: ignore[union-attr]
VARYING = {"ts", "epoch", "server"}  # present, but their values differ from run to run


def same(expected: Any, actual: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), (where, actual)
        for key, value in expected.items():
            if key not in VARYING:
                same(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (where, actual)
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            same(e, a, f"{where}[{i}]")
    else:
        assert actual == expected, (where, actual)


async def test_the_documented_session_happens(server: ChatServer) -> None:
    clients: dict[str, ClientConnection] = {}
    pending: dict[str, list[dict[str, Any]]] = {}
    epoch = ""
    async with AsyncExitStack() as stack:
        for n, line in enumerate(TRANSCRIPT.strip().splitlines(), 1):
            who, action, rest = re.match(r"(\w+)\s+(connect|close|←|→)\s*(.*)", line).groups()  # type: ignore[union-attr]
            if action == "connect":
                path = rest.replace("cbce1aab", epoch)
                url = f"ws://127.0.0.1:{server.port}{path}"
                headers = {"Authorization": f"Bearer {make_token(who)}"}
                clients[who] = await stack.enter_async_context(
                    connect(url, additional_headers=headers)
                )
                pending[who] = []
            elif action == "close":
                await clients.pop(who).close()
            elif action == "→":
                await clients[who].send(rest)
            else:
                expected = json.loads(rest)
                # the sender's message copy and its ack may come in either order
                while not any(f["type"] == expected["type"] for f in pending[who]):
                    pending[who].append(await recv_json(clients[who], timeout=5))
                frame = next(f for f in pending[who] if f["type"] == expected["type"])
                pending[who].remove(frame)
                assert {f["type"] for f in pending[who]} <= {"message", "ack"}, line
                same(expected, frame, f"line {n}: {who} ←")
                epoch = epoch or frame.get("epoch", "")
    assert not any(pending.values()), pending
