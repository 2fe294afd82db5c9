"""The SQLite broker against what happens to its file from outside: another process holding
the write lock, a very big room, and files it cannot use (read-only, corrupt, a directory)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from chatctl.broker.sqlite import SQLiteBroker
from helpers import ServeProcess, client, recv_type

#: holds the write lock of the database argv[1] for argv[2] seconds, like an operator's
#: ``sqlite3`` shell in BEGIN IMMEDIATE
HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


async def _outcome(ws: object, client_id: str) -> str:
    """``ack`` or the error code the server answered the message ``client_id`` with."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))  # type: ignore[attr-defined]
        if frame["type"] == "ack" and frame["client_id"] == client_id:
            return "ack"
        if frame["type"] == "error" and frame.get("client_id") == client_id:
            return str(frame["code"])


async def test_another_process_holding_the_write_lock_never_blocks_the_loop(
    tmp_path: Path,
) -> None:
    """8 s of another process's BEGIN IMMEDIATE: pings on another room stay fast; a message
    that waits longer than the bound is refused with broker_unavailable, a later one is
    stored once the lock is released; nothing acked is missing."""
    server = ServeProcess(data_dir=tmp_path).start()
    try:
        async with client(server.port, "other", "bob") as pinger:
            await recv_type(pinger, "welcome")
            senders = [client(server.port, "room", f"user{i}") for i in range(8)]
            conns = [await s.__aenter__() for s in senders]
            for ws in conns:
                await recv_type(ws, "welcome")
            await conns[0].send(json.dumps({"message": "before", "client_id": "before"}))
            assert await _outcome(conns[0], "before") == "ack"

            holder = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                HOLD_LOCK,
                str(tmp_path / "chatctl.db"),
                "8",
                stdout=subprocess.PIPE,
            )
            assert holder.stdout is not None and await holder.stdout.readline() == b"locked\n"
            locked_at = time.monotonic()
            pings: list[float] = []

            async def ping_until_released() -> None:
                while holder.returncode is None:
                    t0 = time.perf_counter()
                    await asyncio.wait_for(await pinger.ping(), 30)
                    pings.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.02)

            async def send(i: int) -> tuple[str, str]:
                await asyncio.sleep(max(0.0, locked_at + i - time.monotonic()))
                cid = f"m{i}"
                await conns[i].send(json.dumps({"message": cid, "client_id": cid}))
                return cid, await _outcome(conns[i], cid)

            pinging = asyncio.create_task(ping_until_released())
            outcomes = dict(await asyncio.gather(*(send(i) for i in range(8))))
            await pinging
            for s in senders:
                await s.__aexit__(None, None, None)
        assert await asyncio.wait_for(holder.wait(), 10) == 0

        assert len(pings) > 100 and max(pings) < 0.1, f"worst ping {max(pings) * 1000:.0f} ms"
        assert set(outcomes.values()) <= {"ack", "broker_unavailable"}, outcomes
        assert outcomes["m0"] == "broker_unavailable"  # waited past the bound
        assert outcomes["m7"] == "ack"  # sent a second before the release
    finally:
        server.stop()
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    try:
        kept = await broker.history("room", since=0, limit=100)
    finally:
        await broker.close()
    stored = [m.client_id for m in kept.messages]
    acked = ["before", *sorted(c for c, o in outcomes.items() if o == "ack")]
    assert sorted(stored) == sorted(acked) and len(set(stored)) == len(stored)
