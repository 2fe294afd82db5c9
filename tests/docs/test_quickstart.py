"""README.md's quick start, run as written on one host.

Every command line of the quick start's ``sh`` blocks must be listed in COVERAGE (so a new
snippet cannot go untested). Two deviations, both unavoidable in a test: the server gets a
free ``--port`` instead of 8000, and the clients get ``CHATCTL_SERVER`` pointing at it. Each
run starts from an empty ``XDG_CONFIG_HOME`` and no ``CHATCTL_*`` variables.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from websockets.asyncio.client import connect

from genlib import ROOT, load_app_command
from support.helpers import ServeProcess, recv_type, ws_url

SERVE = "pip install . && chatctl serve"
TEST_COMMAND = "python3 -m pip install -e '.[test]' && python3 -m pytest -q -n auto"
TOKEN = "export CHATCTL_TOKEN=$(chatctl token create --user alice)"
INSPECT = 'chatctl token inspect "$CHATCTL_TOKEN"'
JOIN = "chatctl join general ops"
SEND = 'CHATCTL_TOKEN=$(chatctl token create --user bob) chatctl send general "hello from bob"'
CURL = (
    'curl -H "Authorization: Bearer $(chatctl token create --user ci)" -d "backup done" \\\n'
    "  http://127.0.0.1:8000/rooms/general/messages"
)
HOOK = "chatctl token create --user grafana --room alerts --webhook   # prints http://…/hooks/…"

#: every quick-start line -> where it is covered
COVERAGE = {
    SERVE: "test_quickstart_server_and_tokens (pip install: test_wheel.py and CI)",
    TEST_COMMAND: "CI runs it verbatim (test_readme.py checks .ci/run)",
    TOKEN: "test_quickstart_server_and_tokens",
    INSPECT: "test_quickstart_server_and_tokens",
    JOIN: "test_quickstart_chat",
    SEND: "test_quickstart_chat",
    CURL.split("\n")[0]: "test_quickstart_curl_and_webhook",
    CURL.split("\n")[1].strip(): "test_quickstart_curl_and_webhook",
    HOOK: "test_quickstart_curl_and_webhook",
}


def quickstart_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip()]


def test_every_quickstart_line_is_covered() -> None:
    assert quickstart_lines() == list(COVERAGE)


@pytest.fixture
def one_host(isolated_home: Path) -> dict[str, str]:
    """The environment of a new user: no CHATCTL_* variables, empty config and state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    bindir = isolated_home / "bin"
    bindir.mkdir()
    (bindir / "chatctl").write_text(f'#!/bin/sh\nexec {sys.executable} -m chatctl "$@"\n')
    (bindir / "chatctl").chmod(0o755)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    return env


def bash(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_server(env: dict[str, str]) -> ServeProcess:
    serve = SERVE.split(" && ")[1]
    assert serve == "chatctl serve"  # no flags: the test only adds --port
    return ServeProcess(env=env).start()


def test_quickstart_server_and_tokens(one_host: dict[str, str], isolated_home: Path) -> None:
    server = start_server(one_host)
    try:
        secret = isolated_home / "config" / "chatctl" / "secret"
        assert secret.exists() and str(secret) in "".join(server.log)
        env = dict(one_host, CHATCTL_SERVER=f"ws://127.0.0.1:{server.port}")
        result = bash(f'{TOKEN}\n{INSPECT}\necho "TOKEN=$CHATCTL_TOKEN"', env)
        assert result.returncode == 0, result.stderr
        assert "alice" in result.stdout and "valid: yes" in result.stdout
        token = result.stdout.split("TOKEN=")[1].strip()

        async def browser() -> None:
            """The browser snippet: token in the query, {message: "hi"} without a type."""
            async with connect(ws_url(server.port, "general", token=token)) as ws:
                await recv_type(ws, "welcome")
                await ws.send(json.dumps({"message": "hi"}))
                frame = await recv_type(ws, "message")
                assert {"id", "room", "user", "message", "ts"} <= set(frame)
                assert frame["user"] == "alice" and frame["message"] == "hi"

        asyncio.run(browser())
    finally:
        assert server.stop() == 0


def test_quickstart_chat(one_host: dict[str, str]) -> None:
    commands = load_app_command().commands  # type: ignore[attr-defined]
    missing = [name for name in ("join", "send") if name not in commands]
    if missing:
        pytest.skip(f"quick start needs 'chatctl {' and '.join(missing)}', not on this branch")
    server = start_server(one_host)
    env = dict(one_host, CHATCTL_SERVER=f"ws://127.0.0.1:{server.port}", TERM="xterm")
    try:
        token = bash(f'{TOKEN}\necho "$CHATCTL_TOKEN"', env).stdout.strip()
        terminal = pexpect.spawn(
            "bash",
            ["-c", JOIN],
            env=dict(env, CHATCTL_TOKEN=token),
            encoding="utf-8",
            timeout=20,
            dimensions=(24, 100),
        )
        try:
            terminal.expect("general")  # the client shows the room it joined
            sent = bash(SEND, env)
            assert sent.returncode == 0, sent.stderr
            terminal.expect_exact("hello from bob")
            terminal.sendcontrol("d")  # Ctrl-D leaves
            terminal.expect(pexpect.EOF)
        finally:
            terminal.close(force=True)
        assert terminal.exitstatus == 0
    finally:
        server.stop()


def test_quickstart_curl_and_webhook(one_host: dict[str, str]) -> None:
    """The quick start's curl line posts into #general, and the webhook URL that
    ``token create --webhook`` prints takes a Slack-format post into #alerts; both are then in
    the rooms' history as ``chatctl join --json`` reads it."""
    server = start_server(one_host)
    env = dict(one_host, CHATCTL_SERVER=f"ws://127.0.0.1:{server.port}")
    try:
        curl = CURL.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        posted = bash(f"{curl} --fail-with-body --silent --show-error", env)
        assert posted.returncode == 0, posted.stderr
        ack = json.loads(posted.stdout)
        assert ack["type"] == "ack" and ack["id"] == 1, ack

        url = bash(HOOK.split("#")[0], env)
        assert url.returncode == 0, url.stderr
        hook = url.stdout.strip()
        assert hook.startswith(f"http://127.0.0.1:{server.port}/hooks/"), hook
        slack = bash(
            f"curl --fail-with-body -sS -H 'Content-Type: application/json' "
            f"""-d '{{"text": "disk 91% on db1"}}' {hook}""",
            env,
        )
        assert slack.returncode == 0, slack.stderr

        for room, user, text in (
            ("general", "ci", "backup done"),
            ("alerts", "grafana", "disk 91% on db1"),
        ):
            token = bash(TOKEN.split("=", 1)[1].strip("$()"), env).stdout.strip()
            read = bash(
                f"chatctl join {room} --json --once --history 5",
                dict(env, CHATCTL_TOKEN=token),
            )
            assert read.returncode == 0, read.stderr
            (line,) = read.stdout.splitlines()
            frame = json.loads(line)
            assert (frame["user"], frame["message"]) == (user, text)
    finally:
        assert server.stop() == 0
