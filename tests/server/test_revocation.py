"""Revoking a token (issue 26, part 5) on one server: ``POST /api/revoke`` (an admin token)
on the memory broker, ``chatctl token revoke`` on the host with the SQLite broker. A revoked
token is refused before the upgrade (401), its live connections are closed with 4002 within
a second, a ``refresh`` with it is refused, and with SQLite it stays refused after a restart.
Every wait is on a frame or a close, not a sleep."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatctl.broker.sqlite import SQLiteBroker
from chatctl.server import ChatServer
from chatctl.server.settings import ServerSettings
from support.curl import curl
from support.helpers import chatctl_env, client, make_token, recv_type, verifier


async def closed(ws: ClientConnection, timeout: float) -> float:
    """Read until the server closes ``ws`` (its close frame); when that happened."""
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return time.monotonic()


async def refused(port: int, token: str, room: str = "general") -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        async with client(port, room, "x", token=token):
            pass
    response = info.value.response
    return response.status_code, response.body.decode().strip()


async def revoke_over_http(port: int, body: dict[str, Any], token: str | None = None) -> Any:
    admin = token or make_token("root", admin=True)
    return await curl(
        port,
        "/api/revoke",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps(body),
        token=admin,
    )


async def test_an_admin_revokes_a_token_over_http(server: ChatServer) -> None:
    leaked, other = make_token("alice"), make_token("alice")
    async with (
        client(server.port, "general", "alice", token=leaked) as ws,
        client(server.port, "general", "alice", token=other) as kept,
    ):
        await recv_type(ws, "welcome")
        await recv_type(kept, "welcome")
        answer = await revoke_over_http(server.port, {"token": leaked})
        done = time.monotonic()
        assert answer.status == 200 and answer.json()["type"] == "revoked"
        assert await closed(ws, 1.0) - done < 1.0
        assert (ws.close_code, ws.close_reason) == (4002, "token revoked")
        await kept.send(json.dumps({"type": "ping", "data": 1}))
        assert (await recv_type(kept, "pong"))["data"] == 1
    assert await refused(server.port, leaked) == (401, "token revoked")
    posted = await curl(server.port, "/rooms/general/messages", "-d", "x", token=leaked)
    assert posted.status == 401 and posted.json()["reason"] == "token revoked"
    assert server.metrics.counters.token_revocations == 1


async def test_a_refresh_with_a_revoked_token_is_refused(server: ChatServer) -> None:
    fresh = make_token("alice")
    assert (await revoke_over_http(server.port, {"token": fresh})).status == 200
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"type": "refresh", "token": fresh}))
        error = await recv_type(ws, "error")
        assert (error["code"], error["reason"]) == ("invalid_token", "token revoked")
        await ws.send(json.dumps({"message": "still here", "client_id": "c1"}))
        assert (await recv_type(ws, "ack"))["client_id"] == "c1"


async def test_revoking_a_users_tokens_spares_later_ones_and_others(server: ChatServer) -> None:
    old = make_token("alice", now=time.time() - 60)
    async with (
        client(server.port, "general", "alice", token=old) as ws,
        client(server.port, "general", "bob") as bob,
    ):
        await recv_type(ws, "welcome")
        await recv_type(bob, "welcome")
        answer = await revoke_over_http(server.port, {"user": "alice", "before": time.time() - 30})
        assert answer.status == 200 and answer.json()["kind"] == "user"
        await closed(ws, 1.0)
        assert ws.close_code == 4002 and "tokens of alice issued before" in (ws.close_reason or "")
        await bob.send(json.dumps({"type": "ping", "data": 2}))
        assert (await recv_type(bob, "pong"))["data"] == 2
    async with client(server.port, "general", "alice") as ws:  # issued now: accepted
        await recv_type(ws, "welcome")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"jti": "has space"}, 400, "invalid_field"),
        ({"user": "alice", "before": "yesterday"}, 400, "invalid_field"),
        ({"user": "alice", "jti": "abc"}, 400, "invalid_field"),
        ({"token": "not.a.jwt"}, 400, "invalid_field"),
        ([1], 400, "invalid_frame"),
    ],
)
async def test_bad_revocations_are_refused(
    server: ChatServer, body: Any, status: int, code: str
) -> None:
    answer = await revoke_over_http(server.port, body)
    assert (answer.status, answer.json()["code"]) == (status, code)


async def test_only_an_admin_token_revokes(server: ChatServer) -> None:
    answer = await revoke_over_http(server.port, {"jti": "abc"}, token=make_token("alice"))
    assert answer.status == 403
    assert answer.json()["reason"] == "revoking needs a token with admin: true"
    anonymous = await curl(server.port, "/api/revoke", "-d", "{}")
    assert anonymous.status == 401
    wrong = await curl(server.port, "/api/revoke", token=make_token("root", admin=True))
    assert wrong.status == 405 and wrong.headers["allow"] == "POST"


# --------------------------------------------------------------------------- SQLite, the CLI


def revoke_cli(
    *args: str, data_dir: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = chatctl_env(**({"CHATCTL_DATA_DIR": str(data_dir)} if data_dir else {}))
    return subprocess.run(
        [sys.executable, "-m", "chatctl", "token", "revoke", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=30,
    )


def sqlite_server(data_dir: Path) -> ChatServer:
    return ChatServer(ServerSettings(port=0), verifier(), SQLiteBroker(data_dir))


@pytest.fixture
async def sqlite_srv(tmp_path: Path) -> AsyncIterator[ChatServer]:
    async with sqlite_server(tmp_path) as srv:
        yield srv


async def test_token_revoke_on_the_host_closes_and_refuses_across_a_restart(
    tmp_path: Path,
) -> None:
    leaked = make_token("alice")
    async with sqlite_server(tmp_path) as srv:
        async with client(srv.port, "general", "alice", token=leaked) as ws:
            await recv_type(ws, "welcome")
            done = await asyncio.to_thread(revoke_cli, leaked, data_dir=tmp_path)
            at = time.monotonic()
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("revoked token ") and "chatctl.db" in done.stdout
            assert await closed(ws, 1.0) - at < 1.0
            assert ws.close_code == 4002
        assert await refused(srv.port, leaked) == (401, "token revoked")
    async with sqlite_server(tmp_path) as srv:  # restarted: read from the file at start
        assert await refused(srv.port, leaked) == (401, "token revoked")
        async with client(srv.port, "general", "alice") as ws:
            await recv_type(ws, "welcome")


async def test_token_revoke_by_id_and_by_user(sqlite_srv: ChatServer, tmp_path: Path) -> None:
    import jwt

    by_id, old = make_token("alice"), make_token("bob", now=time.time() - 10)
    jti = jwt.decode(by_id, options={"verify_signature": False})["jti"]
    async with (
        client(sqlite_srv.port, "general", "alice", token=by_id) as a,
        client(sqlite_srv.port, "general", "bob", token=old) as b,
    ):
        await recv_type(a, "welcome")
        await recv_type(b, "welcome")
        by_stdin = await asyncio.to_thread(revoke_cli, "-", data_dir=tmp_path, stdin=jti + "\n")
        assert by_stdin.returncode == 0 and f"revoked token {jti}" in by_stdin.stdout
        await closed(a, 1.5)
        done = await asyncio.to_thread(revoke_cli, "--user", "bob", data_dir=tmp_path)
        assert done.returncode == 0 and "every token of bob issued before" in done.stdout
        await closed(b, 1.5)
        assert (a.close_code, b.close_code) == (4002, 4002)
    # the admin route writes the same table
    answer = await revoke_over_http(sqlite_srv.port, {"user": "carol"})
    assert answer.status == 200
    assert await refused(sqlite_srv.port, make_token("carol", now=time.time() - 5)) == (
        401,
        answer.json()["revoked"].replace("every token", "token revoked: tokens"),
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "alice", "--before", "yesterday"], "--before: not a time"),
        (["--user", "alice", "--before", "2099-01-01"], "is in the future"),
        (["has space"], "not a token or a token id"),
        (["a.b.c"], "not a JWT"),
        ([], "give a token or a token id, or --user"),
        (["abc", "--before", "now"], "--before goes with --user"),
        (["abc", "--broker", "memory:"], "the memory broker keeps no revocations"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = revoke_cli(*args, data_dir=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatctl: ") and message in lines[0]


def test_cli_without_a_database_says_where_it_looked(tmp_path: Path) -> None:
    done = revoke_cli("abc", data_dir=tmp_path / "nothing")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"chatctl: no chatctl database at {tmp_path / 'nothing' / 'chatctl.db'}: "
        "give the --data-dir or --broker chatctl serve uses"
    )


async def test_token_revoke_through_a_servers_http_api(server: ChatServer) -> None:
    """``--server URL``: from any host, and for a server on the memory broker."""
    leaked = make_token("alice")
    url = f"ws://127.0.0.1:{server.port}"

    def run(token: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chatctl", "token", "revoke", "--server", url, *args],
            capture_output=True,
            text=True,
            env=chatctl_env(CHATCTL_TOKEN=token),
            timeout=30,
        )

    async with client(server.port, "general", "alice", token=leaked) as ws:
        await recv_type(ws, "welcome")
        not_admin = await asyncio.to_thread(run, make_token("mallory"), leaked)
        assert not_admin.returncode == 3
        assert not_admin.stderr == ("chatctl: HTTP 403: revoking needs a token with admin: true\n")
        done = await asyncio.to_thread(run, make_token("root", admin=True), leaked)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("revoked token ") and url in done.stdout
        await closed(ws, 1.0)
        assert ws.close_code == 4002
    assert await refused(server.port, leaked) == (401, "token revoked")


async def test_an_event_stream_of_a_revoked_token_ends(server: ChatServer) -> None:
    from support.curl import curl_path

    leaked = make_token("alice")
    proc = await asyncio.create_subprocess_exec(
        curl_path(),
        *("-s", "-N", "--max-time", "20", "-H", f"Authorization: Bearer {leaked}"),
        f"http://127.0.0.1:{server.port}/rooms/general/events",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert (await asyncio.wait_for(proc.stdout.readline(), 10)).startswith(b"retry:")
    assert (await revoke_over_http(server.port, {"token": leaked})).status == 200
    async with asyncio.timeout(1.0):  # the stream ends: curl reads to its end and exits
        await proc.stdout.read()
        await proc.wait()
