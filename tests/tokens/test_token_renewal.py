"""Token renewal end to end (issue 11 item 7, issue 15 item 5): real ``chatctl join`` and
``chatctl send`` processes against a server that closes connections at their token's
``exp`` plus a 0.5 s leeway (4001) unless they send a fresh token in a ``refresh`` frame."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from chatctl.config import config_dir
from chatctl.server import ChatServer
from support.client_helpers import arun_cli, client_env
from support.helpers import SHORT_TTL, client, recv_type, timed_token
from support.watched import Watched

LEEWAY = 0.5


async def say(port: int, text: str) -> None:
    """bob sends ``text`` and waits for its ack."""
    async with client(port, "general", "bob") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": text, "client_id": text}))
        await recv_type(ws, "ack")


async def wait_for(proc: Watched, predicate: Any, timeout: float, what: str) -> None:
    await asyncio.to_thread(proc.wait_for, predicate, timeout, what)


def printed(proc: Watched, text: str) -> int:
    """How many times a ``join --json`` process printed the message ``text``."""
    return sum(1 for line in proc.out if json.loads(line).get("message") == text)


def source_args(kind: str, path: Path) -> list[str]:
    """The join/send arguments that name ``path`` as the token source of ``kind``."""
    if kind == "file":
        return ["--token-file", str(path)]
    if kind == "command":
        return ["--token-command", f"cat '{path}'"]
    config = config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'token_file = "{path}"\n')
    return []


@pytest.mark.parametrize("kind", ["file", "command", "config"])
async def test_join_renews_its_token_before_it_expires(
    leeway_server: ChatServer, tmp_path: Path, kind: str
) -> None:
    """The source is read again before exp and the new token sent in a refresh frame: the
    connection outlives the first token, without a reconnect."""
    path = tmp_path / "token"
    path.write_text(timed_token("alice", SHORT_TTL))
    env = client_env(leeway_server.port, user="")
    receiver = Watched("join", "general", "--json", *source_args(kind, path), env=env)
    try:
        await say(leeway_server.port, "hello")
        await wait_for(receiver, lambda: printed(receiver, "hello") == 1, 15, "hello")
        path.write_text(timed_token("alice", 3600))  # what a renewing job would do
        await asyncio.sleep(SHORT_TTL + LEEWAY + 0.5)  # past the first token's exp and leeway
        await say(leeway_server.port, "after")
        await wait_for(receiver, lambda: printed(receiver, "after") == 1, 10, "after")
        assert receiver.proc.poll() is None
        assert receiver.err == []  # no reconnect, no token notice: a routine renewal
    finally:
        receiver.stop()


async def test_join_waits_for_a_new_token_after_expiry(
    leeway_server: ChatServer, tmp_path: Path
) -> None:
    """Not renewed in time: closed with 4001, refused at the reconnect, then waiting (not
    exiting) until the file holds a new token; resumes without losing a message."""
    path = tmp_path / "token"
    path.write_text(timed_token("alice", SHORT_TTL))
    receiver = Watched(
        "join",
        "general",
        "--json",
        "--token-file",
        str(path),
        env=client_env(leeway_server.port, ""),
    )
    try:
        await say(leeway_server.port, "hello")
        await wait_for(receiver, lambda: printed(receiver, "hello") == 1, 15, "hello")
        await wait_for(
            receiver, lambda: any("waiting for a new token" in e for e in receiver.err), 15, "wait"
        )
        await say(leeway_server.port, "while expired")
        path.write_text(timed_token("alice", 3600))
        await wait_for(receiver, lambda: printed(receiver, "while expired") == 1, 15, "resume")
        await say(leeway_server.port, "live again")
        await wait_for(receiver, lambda: printed(receiver, "live again") == 1, 10, "live")
        assert receiver.proc.poll() is None
    finally:
        receiver.stop()
    err = "\n".join(receiver.err)
    assert f"waiting for a new one from --token-file {path}" in err  # before exp
    assert "the token expired (4001); reconnecting" in err
    assert "authentication failed: token expired at" in err
    assert f"token renewed from --token-file {path}, valid until" in err
    assert printed(receiver, "hello") == 1 and printed(receiver, "while expired") == 1


async def test_a_fixed_token_says_it_cannot_be_renewed_and_exits_3(
    leeway_server: ChatServer,
) -> None:
    env = client_env(leeway_server.port, user="", CHATCTL_TOKEN=timed_token("alice", SHORT_TTL))
    receiver = Watched("join", "general", "--json", env=env)
    status = await asyncio.to_thread(receiver.wait, 20)
    assert status == 3
    err = receiver.err
    assert "cannot be renewed: CHATCTL_TOKEN is a fixed value: use --token-file" in err[0]
    assert err[-1].startswith("chatctl: authentication failed: token expired at")
    assert err[-1].endswith(
        "(CHATCTL_TOKEN is a fixed value: use --token-file or --token-command to renew it)"
    )


async def test_send_refreshes_its_token(leeway_server: ChatServer, tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(timed_token("alice", SHORT_TTL))
    sender = Watched(
        "send", "general", "--json", "--token-file", str(path),
        env=client_env(leeway_server.port, ""), stdin=True,
    )  # fmt: skip
    try:
        sender.write("first\n")
        await wait_for(sender, lambda: len(sender.out) == 1, 15, "first ack")
        path.write_text(timed_token("alice", 3600))
        await asyncio.sleep(SHORT_TTL + LEEWAY + 0.5)
        sender.write("second\n")
        sender.close_stdin()
        assert await asyncio.to_thread(sender.wait, 15) == 0
    finally:
        sender.stop()
    assert len(sender.out) == 2 and sender.err == []


async def test_token_command_errors_show_its_stderr(leeway_server: ChatServer) -> None:
    env = client_env(leeway_server.port, "")
    res = await arun_cli(
        "send", "general", "hi", "--token-command", "echo 'vault is sealed' >&2; exit 3", env=env
    )
    assert res.returncode == 3
    assert res.stderr == "chatctl: token command failed (exit status 3): vault is sealed\n"


async def test_token_file_flag_beats_the_environment(
    leeway_server: ChatServer, tmp_path: Path
) -> None:
    """Issue 15 item 2: with CHATCTL_TOKEN exported, --token-file used to lose."""
    path = tmp_path / "eve.tok"
    path.write_text(timed_token("eve", 600))
    env = client_env(leeway_server.port, user="dave")
    async with client(leeway_server.port, "general", "bob") as ws:
        await recv_type(ws, "welcome")
        res = await arun_cli("send", "general", "x", "--token-file", str(path), env=env)
        assert res.returncode == 0, res.stderr
        message = await recv_type(ws, "message")
    assert message["user"] == "eve"


async def test_bench_takes_a_token_command_and_the_flag_wins(leeway_server: ChatServer) -> None:
    env = client_env(leeway_server.port, user="", CHATCTL_TOKEN="from-the-environment")
    res = await arun_cli(
        "bench", "--server", f"ws://127.0.0.1:{leeway_server.port}", "--duration", "0.1",
        "--token-command", "echo 'vault is sealed' >&2; exit 3", env=env,
    )  # fmt: skip
    assert res.returncode == 3
    assert res.stderr == "chatctl: token command failed (exit status 3): vault is sealed\n"
