"""``chatctl send`` through refusals it cannot take at their word: it re-sends from every
refused message that was not re-sent since, whatever the error says it was blocked by."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from support.client_helpers import CHATCTL, arun_cli, client_env

WELCOME = {
    "type": "welcome",
    "user": "alice",
    "room": "ops",
    "epoch": "e",
    "last_id": 0,
    "history": [],
    "users": [],
}


def _error(cid: str, blocked_by: str | None) -> str:
    frame: dict[str, Any] = {
        "type": "error",
        "code": "broker_unavailable",
        "reason": "not stored",
        "client_id": cid,
        "retry_after": 0.1,
    }
    if blocked_by is not None:
        frame["blocked_by"] = blocked_by
    return json.dumps(frame)


async def test_a_message_blocked_by_one_already_stored_is_sent_again() -> None:
    """A server whose order gate ends on the LAST message a failed batch held (chatctl
    before issue 22): lines 2 and 3 are refused, 4-6 blocked by 3; line 2 sent again is
    refused blocked by 3, which is then stored. `send` used to wait for line 2 until its
    timeout (exit 5); it sends it again and exits 0, every line stored once."""
    stored: dict[str, int] = {}

    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps(WELCOME))
        gate: str | None = None
        n = 0
        async for data in ws:
            cid = json.loads(data)["client_id"]
            n += 1
            if n in (2, 3):  # one failed batch, each refusal moving the gate
                gate = cid
                await ws.send(_error(cid, None))
            elif gate is not None and cid != gate:
                await ws.send(_error(cid, gate))
            else:
                gate = None
                duplicate = cid in stored
                mid = stored.setdefault(cid, len(stored) + 1)
                ack = {"type": "ack", "client_id": cid, "id": mid, "room": "ops", "ts": 1.0}
                await ws.send(json.dumps({**ack, "duplicate": duplicate}))

    async with serve(handler, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        lines = "".join(f"line {i}\n" for i in range(1, 7))
        res = await arun_cli("send", "ops", "--timeout", "5", env=client_env(port), input=lines)
    assert res.returncode == 0, res.stderr
    assert sorted(int(cid.rsplit("-", 1)[1]) for cid in stored) == [1, 2, 3, 4, 5, 6]


async def test_the_timeout_counts_every_message_not_acked() -> None:
    """Line 2 is read after line 1, so its deadline is later: the timeout of line 1 counts
    both (it used to say "1 of 2"), and says where reading stdin stopped."""
    received: list[str] = []
    got = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:  # welcomes, never acks
        await ws.send(json.dumps(WELCOME))
        async for data in ws:
            received.append(str(data))
            got.set()

    async with serve(handler, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            *CHATCTL,
            "send",
            "ops",
            "--timeout",
            "2",
            env=client_env(port),
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(b"one\n")
        await asyncio.wait_for(got.wait(), 10)
        got.clear()
        proc.stdin.write(b"two\n")
        await asyncio.wait_for(got.wait(), 10)
        err = await asyncio.wait_for(proc.stderr.read(), 15)
        assert await proc.wait() == 5
        proc.stdin.close()
    assert err.decode() == (
        "chatctl: timed out: 2 of 2 messages not acked within 2 s; stdin read up to line 2 only\n"
    )
