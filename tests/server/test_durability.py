"""`chatctl serve` with no broker flags keeps rooms across restarts and crashes (SQLite).

Real processes and real files: a server is SIGKILLed while `chatctl send` pipelines lines
into it, started again on the same data directory, and must hold every acked line exactly
once, continue the ids, and let a client that resumes with its old ``since``/``epoch``
recover exactly what it missed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.client_helpers import CHATCTL, client_env
from support.helpers import ServeProcess, chatctl_env, client, free_port, recv_type

ROOM = "durable"
LINES = 3000


async def _welcome(port: int, user: str = "reader", **params: Any) -> dict[str, Any]:
    async with client(port, ROOM, user, **params) as ws:
        return await recv_type(ws, "welcome")


async def _send_until_killed(server: ServeProcess, acks_before_kill: int) -> list[dict[str, Any]]:
    """Pipe LINES lines into `chatctl send --json`; SIGKILL the server once some are acked.
    Returns every ack the sender printed."""
    lines = "".join(f"line {i}\n" for i in range(LINES)).encode()
    sender = await asyncio.create_subprocess_exec(
        *CHATCTL,
        "send",
        ROOM,
        "--json",
        env=client_env(server.port, "writer"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert sender.stdin is not None and sender.stdout is not None
    sender.stdin.write(lines)
    sender.stdin.close()
    acks: list[dict[str, Any]] = []
    async with asyncio.timeout(60):
        while len(acks) < acks_before_kill:
            line = await sender.stdout.readline()
            assert line, "chatctl send exited before the server was killed"
            acks.append(json.loads(line))
    server.kill()  # SIGKILL: no drain, no checkpoint, no close
    # what the sender read before the connection died is acked too
    sender.send_signal(signal.SIGKILL)
    rest = await sender.stdout.read()
    await sender.wait()
    acks += [json.loads(x) for x in rest.decode().splitlines() if x.strip()]
    return acks


async def test_sigkill_mid_send_loses_nothing_acked_and_ids_continue(tmp_path: Path) -> None:
    args = ("--history", str(LINES * 2))
    server = ServeProcess(*args, data_dir=tmp_path).start()
    try:
        before = await _welcome(server.port)  # a client that was there before the crash
        acks = await _send_until_killed(server, acks_before_kill=LINES // 3)
    finally:
        server.kill()
    assert LINES // 3 <= len(acks) < LINES, "the kill came too late to test anything"

    again = ServeProcess(*args, data_dir=tmp_path, port=server.port).start()
    try:
        assert "rooms are kept in" in again.read_log()
        full = await _welcome(again.port, since=0, history=LINES * 2)
        ids = [m["id"] for m in full["history"]]
        texts = [m["message"] for m in full["history"]]
        assert ids == list(range(1, len(ids) + 1)), "ids are not 1..N after the crash"
        assert len(set(texts)) == len(texts), "a line was stored twice"
        kept = {m["client_id"]: (m["id"], m["message"]) for m in full["history"]}
        for ack in acks:
            assert kept[ack["client_id"]][0] == ack["id"], f"acked {ack} but not kept"
        assert full["epoch"] == before["epoch"] and full["recovered"] is True

        # the client that saw nothing resumes where it was: exactly what it missed
        resumed = await _welcome(again.port, since=before["last_id"], epoch=before["epoch"])
        assert resumed["recovered"] is True
        assert [m["id"] for m in resumed["history"]] == ids[before["last_id"] :]

        # ids continue after the crash
        async with client(again.port, ROOM, "writer") as ws:
            await recv_type(ws, "welcome")
            await ws.send(json.dumps({"message": "after the crash", "client_id": "after"}))
            assert (await recv_type(ws, "ack"))["id"] == ids[-1] + 1
    finally:
        again.stop()


async def test_sigkill_with_a_short_history_keeps_every_acked_client_id(tmp_path: Path) -> None:
    """--history 20: the lines acked before the kill are long out of the history, their rows
    kept for the de-duplication window (schema 5: a row is the record). After the restart a
    re-sent line is answered as the duplicate it is, with its original id, and ids go on
    after every id given out before the kill."""
    args = ("--history", "20")
    server = ServeProcess(*args, data_dir=tmp_path).start()
    try:
        acks = await _send_until_killed(server, acks_before_kill=LINES // 2)
    finally:
        server.kill()
    assert LINES // 2 <= len(acks) < LINES, "the kill came too late to test anything"

    again = ServeProcess(*args, data_dir=tmp_path, port=server.port).start()
    try:
        welcome = await _welcome(again.port)
        assert welcome["last_id"] >= max(a["id"] for a in acks)
        assert [m["id"] for m in welcome["history"]][-1] == welcome["last_id"]
        async with client(again.port, ROOM, "writer") as ws:
            await recv_type(ws, "welcome")
            for ack in (acks[0], acks[len(acks) // 2], acks[-1]):
                await ws.send(json.dumps({"message": "again", "client_id": ack["client_id"]}))
                answer = await recv_type(ws, "ack")
                assert answer["duplicate"] is True and answer["id"] == ack["id"]
            await ws.send(json.dumps({"message": "after the crash", "client_id": "after"}))
            answer = await recv_type(ws, "ack")
            assert answer["duplicate"] is False and answer["id"] == welcome["last_id"] + 1
    finally:
        again.stop()


async def test_sigterm_restart_keeps_history_epoch_and_dedup(tmp_path: Path) -> None:
    server = ServeProcess(data_dir=tmp_path).start()
    try:
        async with client(server.port, ROOM, "alice") as ws:
            await recv_type(ws, "welcome")
            for i in range(5):
                await ws.send(json.dumps({"message": f"m{i}", "client_id": f"c{i}"}))
                await recv_type(ws, "ack")
        seen = await _welcome(server.port, history=2)
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.read_log()

    again = ServeProcess(data_dir=tmp_path, port=server.port).start()
    try:
        resumed = await _welcome(again.port, since=3, epoch=seen["epoch"])
        assert resumed["recovered"] is True and resumed["epoch"] == seen["epoch"]
        assert [m["message"] for m in resumed["history"]] == ["m3", "m4"]
        async with client(again.port, ROOM, "alice") as ws:
            await recv_type(ws, "welcome")
            # a client re-sending after the restart is acked with the original, not stored again
            await ws.send(json.dumps({"message": "m4", "client_id": "c4"}))
            ack = await recv_type(ws, "ack")
            assert ack["duplicate"] is True and ack["id"] == 5
        assert (await _welcome(again.port))["last_id"] == 5
    finally:
        again.stop()


def test_a_second_server_on_the_same_data_is_refused(tmp_path: Path) -> None:
    first = ServeProcess(data_dir=tmp_path).start()
    try:
        env = chatctl_env(CHATCTL_DATA_DIR=str(tmp_path))
        result = subprocess.run(
            [sys.executable, "-m", "chatctl", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        errors = [line for line in result.stderr.splitlines() if "INFO" not in line]
        assert result.returncode == 2, result.stderr
        assert errors == [
            f"chatctl: {tmp_path / 'chatctl.db'} is in use by another chatctl serve "
            f"(pid {first.proc.pid if first.proc else '?'}): stop it or choose another --data-dir"
        ]
    finally:
        first.stop()


def test_a_corrupt_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "chatctl.db"
    db.write_bytes(b"not a database\n" * 500)
    result = subprocess.run(
        [sys.executable, "-m", "chatctl", "serve", "--port", str(free_port())],
        env=chatctl_env(CHATCTL_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f"chatctl: {db} is not a chatctl database")
    assert "Traceback" not in result.stderr
    assert db.read_bytes() == b"not a database\n" * 500


async def test_memory_mode_writes_nothing(tmp_path: Path) -> None:
    server = ServeProcess("--memory", data_dir=tmp_path / "unused").start()
    try:
        assert "in memory only" in server.read_log()
        assert (await _welcome(server.port))["last_id"] == 0
    finally:
        server.stop()
    assert not (tmp_path / "unused").exists()
