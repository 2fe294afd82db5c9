"""``chatctl send`` end to end: the real CLI against real servers."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from chatctl.broker.base import PublishResult
from chatctl.broker.memory import MemoryBroker
from chatctl.server import ChatServer, ServerSettings
from support.client_helpers import CHATCTL, arun_cli, client_env, run_cli, serving
from support.helpers import (
    client,
    free_port,
    make_token,
    recv_messages,
    recv_type,
    verifier,
)


async def test_text_argument_is_one_message_and_json_prints_the_ack(server: ChatServer) -> None:
    async with client(server.port, "ops", "bob", history=0) as listener:
        await recv_type(listener, "welcome")
        res = await arun_cli(
            "send", "ops", "deploy", "finished", "--json", env=client_env(server.port)
        )
        assert res.returncode == 0, res.stderr
        ack = json.loads(res.stdout)
        assert ack["type"] == "ack" and ack["duplicate"] is False and ack["room"] == "ops"
        [msg] = await recv_messages(listener, 1)
        assert (msg["user"], msg["message"], msg["id"]) == ("alice", "deploy finished", ack["id"])
        assert res.stderr == ""


async def test_me_sends_an_action(server: ChatServer) -> None:
    async with client(server.port, "ops", "bob", history=0) as listener:
        await recv_type(listener, "welcome")
        res = await arun_cli("send", "ops", "--me", "waves", env=client_env(server.port))
        assert res.returncode == 0, res.stderr
        [msg] = await recv_messages(listener, 1)
        assert (msg["kind"], msg["message"]) == ("action", "waves")


async def test_stdin_lines_are_messages_in_order(server: ChatServer) -> None:
    lines = [f"line {i} ünïcode" for i in range(2000)]
    text = "\n".join(lines[:1000]) + "\n\n   \n" + "\r\n".join(lines[1000:])  # no final newline
    async with client(server.port, "ops", "bob", history=0) as listener:
        await recv_type(listener, "welcome")
        res = await arun_cli(
            "send", "ops", "--window", "64", env=client_env(server.port), input=text
        )
        assert res.returncode == 0, res.stderr
        got = await recv_messages(listener, 2000)
        assert [m["message"] for m in got] == lines  # blank lines skipped, CRLF stripped
        ids = [m["id"] for m in got]
        assert ids == sorted(set(ids))


async def test_dash_reads_stdin(server: ChatServer) -> None:
    res = await arun_cli("send", "ops", "-", "--json", env=client_env(server.port), input="a\nb\n")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 2


async def test_slow_stdin_lines_are_sent_as_they_arrive(server: ChatServer) -> None:
    """Like ``tail -f log | chatctl send``: each line is delivered before stdin ends."""
    async with client(server.port, "ops", "bob", history=0) as listener:
        await recv_type(listener, "welcome")
        proc = await asyncio.create_subprocess_exec(
            *CHATCTL,
            "send",
            "ops",
            env=client_env(server.port),
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        for i in range(3):
            proc.stdin.write(f"event {i}\n".encode())
            await proc.stdin.drain()
            [msg] = await recv_messages(listener, 1)
            assert msg["message"] == f"event {i}"
            assert proc.returncode is None
        proc.stdin.write(b"partial line without newline")
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        [msg] = await recv_messages(listener, 1)
        assert msg["message"] == "partial line without newline"


async def test_token_rejected_exits_3(server: ChatServer) -> None:
    env = client_env(server.port, user="")
    env["CHATCTL_TOKEN"] = make_token("alice", ttl=-3600)
    res = await arun_cli("send", "ops", "hi", env=env)
    assert res.returncode == 3
    assert res.stderr.startswith("chatctl: authentication failed: token expired at ")
    assert len(res.stderr.splitlines()) == 1


async def test_room_not_allowed_exits_3(server: ChatServer) -> None:
    env = client_env(server.port, user="")
    env["CHATCTL_TOKEN"] = make_token("alice", rooms=["team-*"])
    res = await arun_cli("send", "ops", "hi", env=env)
    assert res.returncode == 3
    assert (
        res.stderr
        == "chatctl: no permission for room ops: token for alice does not allow room ops\n"
    )


async def test_cannot_connect_exits_4_after_the_timeout() -> None:
    port = free_port()
    res = await arun_cli("send", "ops", "hi", "--timeout", "1", env=client_env(port))
    assert res.returncode == 4
    assert res.stderr == (
        f"chatctl: cannot connect to ws://127.0.0.1:{port}/ws/ops: connection refused "
        "(1 message not acked)\n"
    )


async def test_no_ack_in_time_exits_5() -> None:
    """A server that welcomes but never acks (a stalled broker) -> timeout, status 5."""
    received: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(
            json.dumps(
                {
                    "type": "welcome",
                    "user": "alice",
                    "room": "ops",
                    "epoch": "e",
                    "last_id": 0,
                    "history": [],
                    "users": [],
                }
            )
        )
        async for data in ws:
            received.append(str(data))

    async with serve(handler, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        res = await arun_cli("send", "ops", "--timeout", "1", env=client_env(port), input="a\nb\n")
    assert res.returncode == 5
    assert res.stderr == "chatctl: timed out: 2 of 2 messages not acked within 1 s\n"
    assert len(received) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "bad room!", "hi"], "invalid room name"),
        (["send", "ops", "hi", "--server", "ftp://x"], "malformed server URL"),
        (["send", "ops", "hi", "--timeout", "-1"], "--timeout"),
        (["send", "ops", "   "], "the message is empty"),
        (["send"], "Missing argument"),
    ],
)
async def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    res = await arun_cli(*args, env=client_env(free_port()))
    assert res.returncode == 2
    assert message in res.stderr and res.stderr.count("\n") == 1


async def test_too_long_message_exits_6_and_the_rest_is_delivered(server: ChatServer) -> None:
    text = "ok 1\n" + "x" * 9000 + "\nok 2\n"
    res = await arun_cli("send", "ops", env=client_env(server.port), input=text)
    assert res.returncode == 6
    assert "line 2 not sent: message is 9000 characters; the limit is 8000" in res.stderr
    assert "1 of 3 messages not sent; first: line 2: message is 9000" in res.stderr
    history = await server.broker.history("ops", since=None, limit=10)
    assert [m.text for m in history.messages] == ["ok 1", "ok 2"]


@pytest.mark.slow
def test_server_restart_mid_stream_delivers_every_line_exactly_once() -> None:
    """Stop the server (memory broker) mid-stream while more lines keep coming; restart it
    on the same port. A listening ``chatctl join --json --count N`` (which resumes, is told
    the history was lost, and gets the new server's history) sees every line exactly once."""
    n = 400
    with serving("--welcome-history", "1000") as srv:
        env = client_env(srv.port)
        listener = subprocess.Popen(
            [*CHATCTL, "join", "ops", "--json", "--since", "0", "--count", str(n)],
            env=client_env(srv.port, user="bob"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        sender = subprocess.Popen(
            [*CHATCTL, "send", "ops", "--json", "--window", "50"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert sender.stdin is not None and sender.stdout is not None
        for i in range(n // 2):
            sender.stdin.write(f"msg {i}\n")
        sender.stdin.flush()
        for _ in range(n // 2):  # the first half is stored: the restart loses no ack
            assert json.loads(sender.stdout.readline())["type"] == "ack"
        assert listener.stdout is not None
        seen: list[str] = []
        while len(seen) < n // 2:  # ... and the listener has printed it
            frame = json.loads(listener.stdout.readline())
            if frame["type"] == "message":
                seen.append(frame["message"])
        srv.stop()
    for i in range(n // 2, n):
        sender.stdin.write(f"msg {i}\n")
    sender.stdin.flush()
    with serving("--welcome-history", "1000", port=srv.port):
        sender.stdin.close()
        assert sender.wait(30) == 0, sender.stderr.read() if sender.stderr else ""
        out, err = listener.communicate(timeout=30)
    assert listener.returncode == 0, err
    texts = seen + [
        json.loads(line)["message"]
        for line in out.splitlines()
        if json.loads(line)["type"] == "message"
    ]
    assert Counter(texts) == Counter(f"msg {i}" for i in range(n))
    assert "reconnected" in err
    assert sender.stderr is not None and "reconnected; re-sending" in sender.stderr.read()


class GatedBroker(MemoryBroker):
    """A memory broker whose publish can be held: stored late, after the sender is gone."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def publish(self, room: str, user: str, text: str, **kw: Any) -> PublishResult:
        self.entered.set()
        await self.gate.wait()
        return await super().publish(room, user, text, **kw)


async def test_dropped_connection_resends_unacked_with_the_same_ids() -> None:
    """m0 (at least) is stored but its ack is lost with the connection: the client
    re-sends everything unacked, the server answers duplicate=true, nothing is doubled."""
    broker = GatedBroker()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv:
        lines = [f"m{i}" for i in range(10)]
        proc = await asyncio.create_subprocess_exec(
            *CHATCTL,
            "send",
            "ops",
            "--json",
            env=client_env(srv.port),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        proc.stdin.write("".join(line + "\n" for line in lines).encode())
        proc.stdin.close()
        await asyncio.wait_for(broker.entered.wait(), 10)
        assert srv._ws is not None
        for conn in list(srv._ws.connections):
            conn.transport.abort()  # the connection dies while m0 is being stored
        broker.gate.set()
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err
        acks = [json.loads(line) for line in out.decode().splitlines()]
        # m0 at least was stored by the old connection: its re-send is acked as a duplicate
        assert len(acks) == 10 and acks[0]["duplicate"] is True
        assert sorted(a["id"] for a in acks) == list(range(1, 11))
        assert "reconnected; re-sending 10 unacked messages" in err.decode()
        history = await broker.history("ops", since=None, limit=100)
        assert [m.text for m in history.messages] == lines


@pytest.mark.slow
@pytest.mark.redis
def test_redis_server_killed_mid_stream_delivers_every_line_exactly_once(
    redis_url: str,
) -> None:
    """With the Redis broker, history and de-duplication survive a kill -9 of the server."""
    n = 2000
    with serving("--redis-url", redis_url, "--history", "5000") as srv:
        sender = subprocess.Popen(
            [*CHATCTL, "send", "ops", "--json"],
            env=client_env(srv.port),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert sender.stdin is not None and sender.stdout is not None
        sender.stdin.write("".join(f"msg {i}\n" for i in range(n)))
        sender.stdin.flush()
        assert json.loads(sender.stdout.readline())["type"] == "ack"
        srv.kill()
    with serving("--redis-url", redis_url, "--history", "5000", port=srv.port):
        out, err = sender.communicate(timeout=60)  # closes stdin, drains the acks
        assert sender.returncode == 0, err
        assert all(json.loads(line)["type"] == "ack" for line in out.splitlines())
        res = run_cli("join", "ops", "--json", "--since", "0", "--once", env=client_env(srv.port))
    texts = [json.loads(line)["message"] for line in res.stdout.splitlines()]
    assert Counter(texts) == Counter(f"msg {i}" for i in range(n))


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_wss_uses_system_cas_and_cafile(certificate: tuple[Path, Path]) -> None:
    """wss:// verifies the certificate: refused (one line, status 4) with the system CAs
    only, accepted with --cafile naming the private CA."""
    cert, key = certificate
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handler(ws: ServerConnection) -> None:  # welcomes, then acks every message
        await ws.send(
            json.dumps(
                {
                    "type": "welcome",
                    "user": "alice",
                    "room": "ops",
                    "epoch": "e",
                    "last_id": 0,
                    "history": [],
                    "users": [],
                }
            )
        )
        async for data in ws:
            frame = json.loads(data)
            await ws.send(
                json.dumps(
                    {
                        "type": "ack",
                        "client_id": frame["client_id"],
                        "id": 1,
                        "room": "ops",
                        "ts": 0,
                        "duplicate": False,
                    }
                )
            )

    async with serve(handler, "127.0.0.1", 0, ssl=ctx) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        env = client_env(port, CHATCTL_SERVER=f"wss://localhost:{port}")
        res = await arun_cli("send", "ops", "hi", "--timeout", "3", env=env)
        assert res.returncode == 4
        assert res.stderr.startswith(
            f"chatctl: TLS certificate of wss://localhost:{port} not trusted"
        )
        res = await arun_cli("send", "ops", "hi", "--cafile", str(cert), env=env)
        assert res.returncode == 0, res.stderr


async def test_send_imports_no_ui_redis_or_jwt(server: ChatServer) -> None:
    """Shell scripts call ``chatctl send`` in loops: it must not load the UI stack."""
    env = client_env(server.port)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-X",
        "importtime",
        "-m",
        "chatctl",
        "send",
        "ops",
        "hi",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    modules = {line.split("|")[-1].strip() for line in err.decode().splitlines()}
    assert "chatctl.client.send" in modules
    heavy_modules = ("prompt_toolkit", "rich", "redis", "jwt", "cryptography", "chatctl.server")
    for heavy in (*heavy_modules, "pydantic", "typer._adapters"):
        assert heavy not in modules, heavy


async def test_a_line_over_64k_is_reported_never_split(server: ChatServer) -> None:
    text = "before\n" + "y" * 200_000 + "\nafter\n" + "z" * 70_000  # the last one at EOF
    res = await arun_cli("send", "ops", env=client_env(server.port), input=text)
    assert res.returncode == 6
    assert "line 2 not sent: longer than 65536 bytes (lines are never split)" in res.stderr
    assert "line 4 not sent: longer than 65536 bytes" in res.stderr
    assert "2 of 4 messages not sent" in res.stderr
    history = await server.broker.history("ops", since=None, limit=10)
    assert [m.text for m in history.messages] == ["before", "after"]


async def test_token_from_stdin_and_local_fallback_token(server: ChatServer) -> None:
    env = client_env(server.port, user="")
    res = await arun_cli(
        "send", "ops", "via stdin", "--token", "-", env=env, input=make_token("dora") + "\n"
    )
    assert res.returncode == 0, res.stderr
    # no token anywhere, server on this host, its secret readable: a short token is minted
    res = await arun_cli("send", "ops", "minted", "--user", "erin", env=env)
    assert res.returncode == 0, res.stderr
    assert "no token given: using a 10-minute token for erin" in res.stderr
    history = await server.broker.history("ops", since=None, limit=10)
    assert [(m.user, m.text) for m in history.messages] == [
        ("dora", "via stdin"),
        ("erin", "minted"),
    ]


async def test_a_bulk_send_paces_itself_under_the_advertised_rate_limit() -> None:
    """The welcome announces the rate limit; `send` stays under it, so a burst far over it is
    slowed down, never refused, re-ordered or cut off with 1008."""
    from chatctl.server.limits import RateSettings
    from support.helpers import make_server

    rates = RateSettings(conn_rate=400, conn_burst=50, user_rate=1000, user_burst=500)
    srv = make_server(rates=rates)
    lines = [f"burst {i}" for i in range(600)]
    async with srv, client(srv.port, "ops", "bob", history=0) as listener:
        welcome = await recv_type(listener, "welcome")
        assert welcome["limits"] == {"rate": 400, "burst": 50}
        res = await arun_cli("send", "ops", env=client_env(srv.port), input="\n".join(lines) + "\n")
        assert res.returncode == 0, res.stderr
        assert res.stderr == ""  # no refusal, no reconnect
        got = await recv_messages(listener, 600)
        assert [m["message"] for m in got] == lines
    assert srv.metrics.counters.errors["rate_limited"] == 0
