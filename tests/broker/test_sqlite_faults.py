"""The SQLite broker against what happens to its file from outside: another process holding
the write lock, a very big room, and files it cannot use (read-only, corrupt, a directory)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatctl.broker.sqlite import SQLiteBroker
from chatctl.broker.sqlite.schema import open_database
from support.harden_helpers import rss_kib
from support.helpers import ServeProcess, chatctl_env, client, recv_type

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

        # a loop that waits for the lock stops for seconds (5 s before the fix); a loaded
        # machine's scheduling alone once made one ping 155 ms
        assert len(pings) > 100 and max(pings) < 1.0, f"worst ping {max(pings) * 1000:.0f} ms"
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
    stored = [m.client_id or "" for m in kept.messages]
    acked = ["before", *sorted(c for c, o in outcomes.items() if o == "ack")]
    assert sorted(stored) == sorted(acked) and len(set(stored)) == len(stored)


def _big_room(path: Path, room: str, *, messages: int, client_ids: int) -> None:
    """A room as one long ``chatctl send`` leaves it, written straight into the store."""
    db = open_database(path, synchronous="normal")
    try:
        now = time.time()
        db.execute("BEGIN")
        (rid,) = db.execute(
            "INSERT INTO rooms (name, epoch, last_id, touched) VALUES (?, 'e0', ?, ?)"
            " RETURNING rid",
            (room, messages, now),
        ).fetchone()
        db.executemany(
            "INSERT INTO messages VALUES (?, ?, 'alice', ?, ?, 'text', ?, NULL, NULL, 0)",
            ((rid, i, f"line {i:07d}", now, f"c{i}") for i in range(1, messages + 1)),
        )
        db.executemany(
            "INSERT INTO dedup VALUES (?, 'alice', ?, ?, ?, ?)",
            ((rid, f"c{i}", i, now, now - 1 + i / client_ids) for i in range(1, client_ids + 1)),
        )
        db.execute("COMMIT")
    finally:
        db.close()


async def test_loading_a_big_room_does_not_stall_other_rooms(tmp_path: Path) -> None:
    """A room with 300,000 client ids in its window (more than the 200,000 kept in memory)
    and a 20,000-message history: its first use holds no other room's ack up, and the
    server's memory grows by the capped amount only."""
    _big_room(tmp_path / "chatctl.db", "big", messages=20_000, client_ids=300_000)
    server = ServeProcess("--history", "20000", data_dir=tmp_path).start()
    try:
        async with client(server.port, "other", "bob") as ws:
            await recv_type(ws, "welcome")
            assert server.proc is not None
            before = rss_kib(server.proc.pid)
            latencies: list[float] = []
            loaded = asyncio.Event()

            async def send_until_loaded() -> None:
                i = 0
                while not loaded.is_set() or i < 20:
                    t0 = time.perf_counter()
                    await ws.send(json.dumps({"message": f"m{i}", "client_id": f"m{i}"}))
                    assert await _outcome(ws, f"m{i}") == "ack"
                    latencies.append(time.perf_counter() - t0)
                    i += 1
                    await asyncio.sleep(0.005)

            took = 0.0

            async def load() -> dict[str, object]:
                nonlocal took
                t0 = time.perf_counter()
                async with client(server.port, "big", "carol") as big:
                    welcome = await recv_type(big, "welcome", timeout=60)
                    took = time.perf_counter() - t0
                    loaded.set()
                    return welcome

            sending = asyncio.create_task(send_until_loaded())
            welcome = await load()
            await sending
            grown = rss_kib(server.proc.pid) - before
            assert welcome["last_id"] == 20_000
    finally:
        server.stop()
    # a loop stalled by the load holds an ack for about as long as the load takes (seconds);
    # a loaded machine's scheduling noise stays well under half of it
    bound = max(0.2, took / 2)
    assert max(latencies) < bound, (
        f"an ack took {max(latencies) * 1000:.0f} ms while the room took {took * 1000:.0f} ms"
    )
    assert grown < 150_000, f"RSS grew by {grown} KiB"


def _serve_refused(data_dir: Path) -> str:
    """Run ``chatctl serve`` on ``data_dir``; it must exit 2 with one error line: that line."""
    proc = subprocess.run(
        [sys.executable, "-m", "chatctl", "serve", "--port", "0"],
        env=chatctl_env(CHATCTL_DATA_DIR=str(data_dir)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # the one line, after the INFO lines the server logs while it starts
    lines = [line for line in proc.stderr.splitlines() if " INFO " not in line]
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "listening" not in proc.stderr
    return lines[0]


def test_a_directory_at_the_database_path_exits_2(tmp_path: Path) -> None:
    (tmp_path / "chatctl.db").mkdir()
    assert "is not a regular file" in _serve_refused(tmp_path)


def test_a_database_with_a_corrupt_page_exits_2(tmp_path: Path) -> None:
    db = tmp_path / "chatctl.db"
    _big_room(db, "room", messages=2_000, client_ids=2_000)
    pages = db.stat().st_size // 4096
    assert pages > 20
    with open(db, "r+b") as f:  # garbage over one page in the middle of the messages
        f.seek(4096 * (pages // 2))
        f.write(os.urandom(4096))
    line = _serve_refused(tmp_path)
    assert "is corrupt" in line and "backup" in line


def test_a_read_only_database_exits_2(tmp_path: Path) -> None:
    """Root (the tests' user) writes any file whatever its mode, so the file is made
    immutable (``chattr +i``, ext4 and most disk file systems): open(O_RDWR) then fails
    for root too, and SQLite opens the file read-only without a word, as it does for a
    root-owned backup read by a server running as another user."""
    db = tmp_path / "chatctl.db"
    _big_room(db, "room", messages=10, client_ids=10)
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", db], check=False).returncode:
        pytest.skip("chattr +i is not available here (needs CAP_LINUX_IMMUTABLE, a disk fs)")
    try:
        line = _serve_refused(tmp_path)
    finally:
        subprocess.run([chattr, "-i", db], check=True)
    assert line.startswith("chatctl: cannot write the database") or "cannot write" in line
