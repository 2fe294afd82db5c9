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
    """Each serve default is written once: the flags show ServeOptions' defaults, which are
    read from the server's settings (a --help default can then never lie)."""
    import ast
    import dataclasses
    import inspect

    import typer

    import chatctl.cli.serve
    from chatctl.cli import app
    from chatctl.serve import ServeOptions
    from chatctl.server import ServerSettings

    # no literal default in the flag declarations: every one reads DEFAULTS (= ServeOptions())
    tree = ast.parse(inspect.getsource(chatctl.cli.serve.serve))
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    for arg, default in zip(
        function.args.args[-len(function.args.defaults) :], function.args.defaults, strict=True
    ):
        if not (isinstance(default, ast.Constant) and default.value is None):
            assert ast.unparse(default) == f"DEFAULTS.{arg.arg}", arg.arg

    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    defaults = {f.name: f.default for f in dataclasses.fields(ServeOptions)}
    checked = 0
    for param in serve.params:
        name = param.name
        if name in defaults and defaults[name] is not None and param.default is not None:
            want = defaults[name]
            got = tuple(param.default) if isinstance(want, tuple) else param.default
            assert got == want, f"--{name.replace('_', '-')}: CLI {got!r} != {want!r}"
            checked += 1
    assert checked >= 20

    # what the flags show is what a ChatServer built with no settings does
    options, server = ServeOptions(), ServerSettings()
    assert (options.host, options.port, options.drain_timeout) == (
        server.host,
        server.port,
        server.shutdown_timeout,
    )
    assert (options.history, options.welcome_history) == (
        server.history_size,
        server.welcome_history,
    )
    assert (options.max_frame, options.max_message, options.max_pending) == (
        server.max_frame_bytes,
        server.max_message_chars,
        server.max_pending_bytes,
    )
    assert (options.ping_interval, options.handshake_timeout) == (
        server.ping_interval,
        server.handshake_timeout,
    )
    assert (options.rate_limit, options.rate_burst) == (
        server.rates.conn_rate,
        server.rates.conn_burst,
    )
    assert (options.max_connections, options.max_user_rooms) == (
        server.limits.max_connections,
        server.limits.max_user_rooms,
    )
