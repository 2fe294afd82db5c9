"""One connection's order through a failed SQLite write (docs/protocol.md, "Order"): the
gate waits for the earliest refused message, and ``chatctl send`` re-sends from it.

The full disk is SQLite's page-count fault (``PRAGMA max_page_count`` on the writer's
connection) for a server object in this process, and the kernel's file-size limit
(``RLIMIT_FSIZE``, set on the running process with ``prlimit``) for a real ``chatctl serve``:
both make every write of the database fail, and freeing them lets writes work again.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chatctl.broker.sqlite import SQLiteBroker
from chatctl.server import ChatServer, ServerSettings
from support.client_helpers import CHATCTL, client_env
from support.harden_helpers import http_get
from support.helpers import ServeProcess, client, recv_json, recv_type, verifier

BIG = "x" * 4000  # a message that needs a page of its own


async def _wait_healthy(port: int) -> None:
    async with asyncio.timeout(10):  # the writer probes every second
        while (await http_get(port, "/healthz"))[0] != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_after_a_failed_batch_the_gate_waits_for_the_first_refused_message(
    tmp_path: Path,
) -> None:
    """The issue's case: m0…m49 pipelined into a full disk, then sent again in order once
    it is freed: every one is stored, in order (the gate used to end on the last message
    the failed batch held, refusing m0 `blocked_by` m1 and storing m1 first)."""
    broker = SQLiteBroker(tmp_path)
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    cids = [f"m{i}" for i in range(50)]
    async with srv, client(srv.port, "room", "alice", receive=0) as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": "first", "client_id": "first"}))
        assert (await recv_json(ws))["type"] == "ack"
        pages = await broker.run(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
        await broker.run(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))

        for cid in cids:
            await ws.send(json.dumps({"message": BIG, "client_id": cid}))
        answers = [await recv_json(ws) for _ in cids]
        assert {a["type"] for a in answers} == {"error"}
        assert {a["code"] for a in answers} == {"broker_unavailable"}
        assert [a["client_id"] for a in answers] == cids
        # one refusal of its own, the first; every later message waits for it
        assert "blocked_by" not in answers[0]
        assert [a.get("blocked_by") for a in answers[1:]] == ["m0"] * 49

        await broker.run(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
        await _wait_healthy(srv.port)
        for cid in cids:
            await ws.send(json.dumps({"message": BIG, "client_id": cid}))
        answers = [await recv_json(ws) for _ in cids]
        assert [(a["type"], a["client_id"]) for a in answers] == [("ack", c) for c in cids]
        assert [a["id"] for a in answers] == list(range(2, 52))
    history = await broker.history("room", since=None, limit=100)
    assert [m.client_id for m in history.messages] == ["first", *cids]


def _stored(db_path: Path, room: str) -> int:
    """The room's last id, read from the database as another process would (schema 5: the
    room's row or its newest message, whichever is higher)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
        row = db.execute(
            "SELECT max(last_id, coalesce((SELECT max(id) FROM messages m"
            " WHERE m.rid = rooms.rid), 0)) FROM rooms WHERE name = ?",
            (room,),
        ).fetchone()
    return 0 if row is None else int(row[0])


def _fill_and_free(srv: ServeProcess, db_path: Path, at: int, seen: int) -> None:
    """Once ``at`` messages are stored, make every write of the server fail (file-size limit
    0) until it has logged the failure ``seen + 1`` times and for 2 s more; then free it."""
    assert srv.proc is not None
    deadline = time.monotonic() + 60
    while _stored(db_path, "ops") < at:
        assert time.monotonic() < deadline, "the send did not get that far"
        time.sleep(0.005)
    resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    try:
        while srv.read_log().count("cannot write the database") <= seen:
            assert time.monotonic() < deadline, "the writes did not fail"
            time.sleep(0.01)
        time.sleep(2.0)  # the disk stays full while the client keeps trying
    finally:
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, unlimited)


@pytest.mark.slow
def test_send_stores_every_line_once_in_order_through_two_full_disks(tmp_path: Path) -> None:
    """``chatctl send`` of 20,000 lines to a real ``chatctl serve`` on SQLite whose writes
    fail twice mid-send (2 s each): every line is stored exactly once, in stdin order, and
    it exits 0. It used to exit 5 with hundreds of lines in the middle never stored."""
    n = 20_000
    stdin = tmp_path / "lines.txt"
    stdin.write_text("".join(f"line {i}\n" for i in range(1, n + 1)))
    data = tmp_path / "data"
    db_path = data / "chatctl.db"
    srv = ServeProcess(data_dir=data).start()
    try:
        with stdin.open() as lines:
            send = subprocess.Popen(
                [*CHATCTL, "send", "ops", "--json"],
                env=client_env(srv.port),
                stdin=lines,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(send.stdout or ()), daemon=True)
        reader.start()
        try:
            _fill_and_free(srv, db_path, 2_000, 0)
            _fill_and_free(srv, db_path, _stored(db_path, "ops") + 3_000, 1)
            rc = send.wait(timeout=90)
        finally:
            send.kill()
        reader.join(5)
        err = (send.stderr.read() if send.stderr else "")[-2000:]
        assert rc == 0, err
        assert srv.read_log().count("writable again") == 2
        acks: list[dict[str, Any]] = [json.loads(line) for line in out]
        by_line = sorted(acks, key=lambda a: int(str(a["client_id"]).rsplit("-", 1)[1]))
        assert [a["id"] for a in by_line] == list(range(1, n + 1)), err
        assert _stored(db_path, "ops") == n  # nothing stored twice
    finally:
        srv.stop()
