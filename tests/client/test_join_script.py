"""``chatctl join`` when stdout is not a terminal: one line per event, resume across restarts."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
from typing import Any

from chatctl.client.join import plain_line
from chatctl.client.sanitize import one_line
from chatctl.protocol import Message
from chatctl.server import ChatServer
from support.client_helpers import CHATCTL, arun_cli, client_env, run_cli, serving
from support.helpers import client, free_port, make_token, recv_type

LINE = re.compile(r"\d\d:\d\d:\d\d (\S+): (.*)")


async def post(port: int, room: str, user: str, *texts: str, kind: str = "text") -> None:
    async with client(port, room, user, history=0) as ws:
        await recv_type(ws, "welcome")
        for i, text in enumerate(texts):
            await ws.send(json.dumps({"message": text, "client_id": f"t{i}-{text}", "kind": kind}))
            await recv_type(ws, "ack")


def test_plain_line_format() -> None:
    message = Message(1, "ops", "bob", "a\nb\x1b[2J", 0.0)
    assert plain_line(message).endswith(" bob: a\\nb")  # the whole sequence removed
    action = plain_line(Message(2, "ops", "bob", "waves", 0.0, kind="action"))
    assert action.endswith(" * bob waves")
    assert one_line("tab\there") == "tab\\there"


async def test_coloured_log_lines_through_send_and_join(server: ChatServer) -> None:
    """A coloured logger's line piped to ``chatctl send`` showed as ``[31mANSI red[0m``
    (only the ESC byte was dropped); now the sequences go whole, and ``--ansi`` keeps the
    colour but nothing else (a window title, a screen clear)."""
    line = "\x1b[31mANSI red\x1b[0m \x1b]0;pwned\x07\x1b[2Jdone\n"
    sent = await arun_cli("send", "logs", input=line, env=client_env(server.port, "bob"))
    assert sent.returncode == 0, sent.stderr
    plain = await arun_cli("join", "logs", "--once", env=client_env(server.port))
    assert LINE.fullmatch(plain.stdout.strip()).groups() == ("bob", "ANSI red done")  # type: ignore[union-attr]
    coloured = await arun_cli("join", "logs", "--once", "--ansi", env=client_env(server.port))
    assert coloured.stdout.split(" ", 1)[1] == "bob: \x1b[31mANSI red\x1b[0m done\n"


async def test_history_once_plain(server: ChatServer) -> None:
    await post(server.port, "ops", "bob", "one", "two", "three")
    res = await arun_cli("join", "ops", "--history", "2", "--once", env=client_env(server.port))
    assert res.returncode == 0, res.stderr
    assert [LINE.fullmatch(line).groups() for line in res.stdout.splitlines()] == [  # type: ignore[union-attr]
        ("bob", "two"),
        ("bob", "three"),
    ]


async def test_json_lines_carry_the_protocol_fields(server: ChatServer) -> None:
    await post(server.port, "ops", "bob", "hello")
    await post(server.port, "ops", "bob", "waves", kind="action")
    res = await arun_cli("join", "ops", "--json", "--once", env=client_env(server.port))
    assert res.returncode == 0, res.stderr
    frames = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(f["type"], f["id"], f["user"], f["message"], f["kind"]) for f in frames] == [
        ("message", 1, "bob", "hello", "text"),
        ("message", 2, "bob", "waves", "action"),
    ]
    assert {"room", "ts", "client_id"} <= frames[0].keys()


async def test_since_and_count_follow_live_messages(server: ChatServer) -> None:
    await post(server.port, "ops", "bob", "m1", "m2", "m3")
    proc = await asyncio.create_subprocess_exec(
        *CHATCTL,
        "join",
        "ops",
        "--since",
        "2",
        "--count",
        "3",
        "--events",  # --json and every frame, presence too
        env=client_env(server.port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
    assert (first["id"], first["message"]) == (3, "m3")
    await post(server.port, "ops", "carol", "live 1", "live 2", "live 3")
    out, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err
    frames = [json.loads(line) for line in out.decode().splitlines()]
    assert ("presence", "carol", "join") in [
        (f["type"], f.get("user"), f.get("event")) for f in frames
    ]
    assert [f["message"] for f in frames if f["type"] == "message"] == [
        "live 1",
        "live 2",
    ]


async def joined(ws: Any, user: str) -> None:
    """Wait until the raw client ``ws`` is told that ``user`` joined its room."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        kind, users = frame.get("type"), (frame.get("user"), *frame.get("joins", ()))
        if kind in ("presence", "presence_batch") and user in users:
            return


async def test_type_picks_the_frames_printed(server: ChatServer) -> None:
    """``--json`` alone prints messages only (a presence line made ``jq -r .message`` print
    ``null``); ``--type presence`` prints only the presence changes."""
    async with client(server.port, "ops", "watcher", history=0) as ws:
        proc = await asyncio.create_subprocess_exec(
            *CHATCTL,
            "join",
            "ops",
            "--type",
            "presence",
            env=client_env(server.port),
            stdout=subprocess.PIPE,
        )
        await joined(ws, "alice")
        plain = await asyncio.create_subprocess_exec(
            *CHATCTL,
            "join",
            "ops",
            "--json",
            "--count",
            "1",
            env=client_env(server.port, "dave"),
            stdout=subprocess.PIPE,
        )
        await joined(ws, "dave")
    assert proc.stdout is not None and plain.stdout is not None
    await post(server.port, "ops", "carol", "hello")  # carol joins, says hello, leaves
    frames = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 10)) for _ in range(3)]
    proc.terminate()
    await proc.wait()
    assert all(f["type"] == "presence" for f in frames), frames
    assert ("dave", "join") in [(f["user"], f["event"]) for f in frames]
    out, _ = await asyncio.wait_for(plain.communicate(), 10)
    assert [json.loads(line)["type"] for line in out.decode().splitlines()] == ["message"]
    res = await arun_cli("join", "ops", "--type", "typing", env=client_env(server.port))
    assert res.returncode == 2
    assert res.stderr == "chatctl: --type 'typing': expected one of message, presence\n"


async def test_expired_token_is_final(server: ChatServer) -> None:
    env = client_env(server.port, user="")
    env["CHATCTL_TOKEN"] = make_token("alice", ttl=-100)
    res = await arun_cli("join", "ops", "--once", env=env)
    assert res.returncode == 3
    assert re.fullmatch(
        r"chatctl: authentication failed: token expired at \d{4}-\d\d-\d\d [\d:]+ UTC\n",
        res.stderr,
    )


def follow(port: int, room: str) -> subprocess.Popen[str]:
    """``chatctl join ROOM`` in the background, its stdout and stderr piped as text."""
    return subprocess.Popen(
        [*CHATCTL, "join", room],
        env=client_env(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_restart_with_memory_broker_reports_missed_history() -> None:
    """The memory broker loses history on restart: the client resumes, is told the room's
    history is gone (not recovered), and goes on printing new messages — never stopping."""
    with serving() as srv:
        run_cli("send", "ops", "before", env=client_env(srv.port, user="bob"))
        proc = follow(srv.port, "ops")
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().endswith(" bob: before\n")
        srv.stop()
    with serving(port=srv.port):
        assert run_cli("send", "ops", "after", env=client_env(srv.port, user="bob")).returncode == 0
        assert proc.stdout.readline().endswith(" bob: after\n")
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "reconnected to ws://127.0.0.1" in err
    assert "missed messages: ops lost its history on the server and its ids start again" in err


async def test_a_closed_pipe_ends_join_with_status_141(server: ChatServer) -> None:
    """``chatctl join ops | head -1``: when the reader goes away, join exits quietly with
    SIGPIPE's status, 141 (issue 22 item 10; it was 0, which ``set -o pipefail`` could not
    tell from a complete run)."""
    await post(server.port, "ops", "bob", "m1", "m2")
    proc = await asyncio.create_subprocess_exec(
        *CHATCTL,
        "join",
        "ops",
        "--history",
        "200",
        env=client_env(server.port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    await proc.stdout.readline()
    proc.stdout.feed_eof()
    transport = proc._transport  # type: ignore[attr-defined]
    transport.get_pipe_transport(1).close()  # like head exiting after one line
    await post(server.port, "ops", "bob", "one more")  # the next write finds no reader
    assert await asyncio.wait_for(proc.wait(), 10) == 141
    assert await proc.stderr.read() == b""


async def test_room_may_be_written_with_a_hash(server: ChatServer) -> None:
    """``chatctl join '#ops'`` as ``/join #ops`` (item 8 of issue 15): the room is ops."""
    await post(server.port, "ops", "bob", "hash")
    res = await arun_cli("join", "#ops", "--once", env=client_env(server.port))
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith(" bob: hash\n")
    bad = await arun_cli("join", "#", "--once", env=client_env(server.port))
    assert bad.returncode == 2 and "invalid room name '#'" in bad.stderr


# ----------------------------------------------------------------------------- fail fast


def test_unreachable_server_at_first_is_status_4_within_timeout() -> None:
    """Issue 15 item 4: ``--once`` (or any script) against a server that is down exits 4 with
    one line once --timeout has passed, as ``chatctl send`` does; it does not retry forever."""
    port = free_port()
    for extra in (["--once"], ["--json"], ["--count", "1"]):
        started = time.monotonic()
        res = run_cli(
            "join",
            "general",
            *extra,
            "-s",
            f"ws://127.0.0.1:{port}",
            "--timeout",
            "1.5",
            env=client_env(port),
        )
        elapsed = time.monotonic() - started
        assert res.returncode == 4, (extra, res.stderr)
        assert res.stderr == (
            f"chatctl: cannot connect to ws://127.0.0.1:{port}/ws/general: connection refused\n"
        )
        assert res.stdout == "" and elapsed < 10


async def test_count_not_reached_within_timeout_is_status_5(server: ChatServer) -> None:
    """``--timeout`` also bounds the whole wait: ``--count 2`` with one message arriving ends
    with status 5 (connected, but the wait ran out), after printing what did arrive."""
    await post(server.port, "ops", "bob", "only one")
    started = time.monotonic()
    res = await arun_cli(
        "join",
        "ops",
        "--since",
        "0",
        "--count",
        "2",
        "--timeout",
        "1.5",
        env=client_env(server.port),
    )
    assert res.returncode == 5, res.stderr
    assert res.stdout.endswith(" bob: only one\n")
    assert res.stderr == "chatctl: timeout: 1 of 2 messages after 1.5 s\n"
    assert 1.4 < time.monotonic() - started < 10


async def test_timeout_ends_a_follower_with_status_0(server: ChatServer) -> None:
    """Without --count or --once there is nothing left undone when --timeout ends the wait:
    ``chatctl join ops --json --timeout 60`` collects a minute of messages and exits 0."""
    await post(server.port, "ops", "bob", "seen")
    res = await arun_cli("join", "ops", "--timeout", "1", env=client_env(server.port))
    assert res.returncode == 0, res.stderr
    assert res.stdout.endswith(" bob: seen\n") and res.stderr == ""


def test_server_closing_cleanly_is_said_in_words() -> None:
    """A clean close (a server stopping: 1001) is a readable notice, not ``connection closed
    (1001)``; the client goes on reconnecting."""
    with serving() as srv:
        proc = follow(srv.port, "ops")
        assert proc.stdout is not None and proc.stderr is not None
        run_cli("send", "ops", "hello", env=client_env(srv.port, user="bob"))
        assert proc.stdout.readline().endswith(" bob: hello\n")  # connected
        srv.stop(signal.SIGINT)  # a server stopping closes with 1001
        line = proc.stderr.readline()
        proc.terminate()
        proc.communicate(timeout=10)
    assert line == "chatctl: the server is shutting down (1001); reconnecting\n"
