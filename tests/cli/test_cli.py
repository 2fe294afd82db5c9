"""The command line as users meet it: real processes, real exit statuses, real stderr."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chatctl import __version__
from support.helpers import ServeProcess, chatctl_env, free_port, make_token, recv_type, ws_url


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatctl", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        input=stdin,
        timeout=timeout,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"chatctl {__version__}"


def test_no_arguments_shows_help_and_exits_2() -> None:
    result = run()
    assert result.returncode == 2 and "serve" in result.stdout and "token" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--bogus"], "No such option: --bogus"),
        (["serve", "--port", "notaport"], "Invalid value for '--port'"),
        (["token", "create"], "Missing option '--user'"),
        (["nosuchcommand"], "No such command 'nosuchcommand'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatctl: ") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_token_create_without_any_secret_says_how_to_get_one() -> None:
    result = run("token", "create", "--user", "alice")
    assert result.returncode == 2
    assert result.stderr.startswith("chatctl: no secret: run 'chatctl serve' once")


def test_token_create_and_inspect(isolated_home: Path) -> None:
    env = chatctl_env()
    token = run("token", "create", "--user", "alice", "--room", "ops", "--ttl", "2h", env=env)
    assert token.returncode == 0, token.stderr
    inspected = run("token", "inspect", "--json", token.stdout.strip(), env=env)
    assert inspected.returncode == 0
    info = json.loads(inspected.stdout)
    assert info["valid"] is True and info["claims"]["sub"] == "alice"
    assert info["claims"]["rooms"] == ["ops"]
    assert info["claims"]["exp"] - info["claims"]["iat"] == 7200
    assert info["key"] == "CHATCTL_SECRET"
    # the same token checked against another secret: shown, but exit 3
    other = chatctl_env(CHATCTL_SECRET="a-completely-different-secret-0123456789")
    bad = run("token", "inspect", "-", env=other, stdin=token.stdout)
    assert bad.returncode == 3 and "valid: no (bad token signature)" in bad.stdout
    garbage = run("token", "inspect", "not-a-token", env=env)
    assert garbage.returncode == 2 and garbage.stderr.startswith("chatctl: not a JWT")


def test_bad_ttl_and_user_are_usage_errors() -> None:
    env = chatctl_env()
    assert run("token", "create", "-u", "alice", "--ttl", "soon", env=env).returncode == 2
    assert run("token", "create", "-u", "a b", env=env).returncode == 2


def test_zero_config_serve_creates_secret_and_token_create_uses_it(isolated_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    server = ServeProcess(env=env).start()
    try:
        secret = isolated_home / "config" / "chatctl" / "secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert str(secret) in "".join(server.log)
        token = run("token", "create", "--user", "alice", env=env)
        assert token.returncode == 0, token.stderr

        async def talk() -> dict[str, object]:
            url = ws_url(server.port, "general")
            headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
            async with connect(url, additional_headers=headers) as ws:
                await recv_type(ws, "welcome")
                await ws.send(json.dumps({"message": "hello", "client_id": "1"}))
                return await recv_type(ws, "ack")

        assert asyncio.run(talk())["id"] == 1
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 1012), (signal.SIGINT, 1001)])
def test_signal_closes_clients_and_exits_0_quickly(sig: int, code: int) -> None:
    server = ServeProcess().start()
    closed: list[int | None] = []

    async def hold() -> None:
        url = ws_url(server.port, "general")
        headers = {"Authorization": f"Bearer {make_token('alice')}"}
        async with connect(url, additional_headers=headers) as ws:
            await recv_type(ws, "welcome")
            assert server.proc is not None
            server.proc.send_signal(sig)
            try:
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
            except ConnectionClosed:
                pass
            closed.append(ws.close_code)

    started = time.monotonic()
    asyncio.run(hold())
    assert server.proc is not None
    assert server.proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 5
    assert closed == [code]


def test_logs_name_user_room_peer_and_never_the_token() -> None:
    server = ServeProcess().start()
    token = make_token("alice")
    bad = make_token("mallory", rooms=["secret-room"])

    async def visit() -> None:
        async with connect(ws_url(server.port, "general", token=token)) as ws:
            await recv_type(ws, "welcome")
        try:
            async with connect(ws_url(server.port, "general", token=bad)):
                pass
        except Exception:
            pass

    asyncio.run(visit())
    server.stop()
    log = server.read_log()
    assert "connect user=alice room=general peer=127.0.0.1:" in log
    assert "disconnect user=alice room=general" in log
    assert "rejected 403 Forbidden" in log
    assert token not in log and bad not in log
    assert token.split(".")[2] not in log


def test_port_in_use_is_one_line() -> None:
    port = free_port()
    first = ServeProcess(port=port).start()
    try:
        result = run("serve", "--port", str(port), env=chatctl_env(), timeout=15)
        assert result.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr.strip().splitlines()[-1]
        assert "Traceback" not in result.stderr
    finally:
        first.stop()


def test_serve_flag_defaults_match_the_server_settings() -> None:
    """Each serve setting is declared once (chatctl/server/options.py, the broker registry):
    every flag shows its declaration's default, and the options built from no flags give
    exactly the settings of a ChatServer built with none (a --help default can never lie)."""
    import typer

    from chatctl.cli import app
    from chatctl.server import ServerSettings
    from chatctl.server.options import ServeOptions, all_settings, server_settings

    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    params = {p.name: p for p in serve.params if p.name not in ("ctx", "help")}
    settings = {s.name: s for s in all_settings()}
    assert set(params) == set(settings)
    for name, s in settings.items():
        want = None if isinstance(s.default, tuple) else s.default
        assert params[name].default == want, f"{s.option}: {params[name].default!r} != {want!r}"
        assert params[name].opts == [s.option]
    assert server_settings(ServeOptions()) == ServerSettings()
