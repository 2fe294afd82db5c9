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
from pathlib import Path

from chatctl.broker.sqlite import SQLiteBroker
from chatctl.server import ChatServer, ServerSettings
from helpers import client, recv_json, recv_type, verifier
from server.harden_helpers import http_get

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
