"""Moderation seen by the scripting clients, against a real in-process server: a piped
``chatctl join`` kicked or banned ends with one stderr line and status 8 (a ban refusing the
next connection: 3, with its reason), ``chatctl send`` refused while muted exits 6 and
kicked while sending exits 8, and ``chatctl history`` prints tombstones and announcements."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
from typing import Any

from chatctl.server import ChatServer
from support.client_helpers import CHATCTL, arun_cli, client_env
from support.helpers import client, make_token, recv_json

MOD = make_token("alice", mod_rooms=["*"])
IDS = itertools.count()


def env(server: ChatServer, user: str) -> dict[str, str]:
    return client_env(server.port, user)


async def moderate(server: ChatServer, room: str, frame: dict[str, Any]) -> dict[str, Any]:
    """Send one moderation frame as alice (a moderator); return her room's announcement."""
    async with client(server.port, room, "alice", token=MOD) as ws:
        await recv_json(ws)  # the welcome
        await ws.send(json.dumps({**frame, "client_id": f"m{next(IDS)}"}))  # a repeat: no news
        while True:
            got = await recv_json(ws)
            if got["type"] == "error":
                raise AssertionError(got)
            if got["type"] == "message" and got.get("kind") == "moderation":
                return got


async def start_join(server: ChatServer, room: str, user: str, *args: str) -> Any:
    proc = await asyncio.create_subprocess_exec(
        *CHATCTL,
        "join",
        room,
        *args,
        env=env(server, user),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    return proc


async def wait_joined(server: ChatServer, room: str, user: str) -> None:
    """Until ``user`` is listed in ``room`` (the piped join is connected)."""
    async with asyncio.timeout(20):
        while True:
            async with client(server.port, room, "watcher", presence=0, receive=0) as ws:
                if user in (await recv_json(ws))["users"]:
                    return
            await asyncio.sleep(0.05)


async def test_a_piped_join_kicked_prints_the_announcement_and_exits_8(server: ChatServer) -> None:
    proc = await start_join(server, "kickme", "bob")
    await wait_joined(server, "kickme", "bob")
    await moderate(
        server, "kickme", {"type": "moderate", "action": "kick", "user": "bob", "reason": "spam"}
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 8, err
    assert err.decode() == "chatctl: kicked from kickme by alice: spam\n"
    assert "-!- alice kicked bob: spam" in out.decode()


async def test_a_piped_join_banned_exits_8_then_is_refused_with_the_reason(
    server: ChatServer,
) -> None:
    proc = await start_join(server, "banme", "bob", "--json")
    await wait_joined(server, "banme", "bob")
    frame = {
        "type": "moderate",
        "action": "ban",
        "user": "bob",
        "duration": "1h",
        "reason": "flood",
    }
    await moderate(server, "banme", frame)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 8, err
    text = err.decode()
    assert text.startswith("chatctl: banned from banme by alice until ") and text.endswith(
        ": flood\n"
    )
    announced = [json.loads(line) for line in out.decode().splitlines()]
    assert announced[-1]["kind"] == "moderation"
    assert announced[-1]["moderation"]["action"] == "ban"
    assert announced[-1]["moderation"]["target"] == "bob"
    again = await arun_cli("join", "banme", "--once", env=env(server, "bob"))
    assert again.returncode == 8  # refused before the upgrade, for the same ban
    assert again.stderr.startswith("chatctl: banned from banme by alice until ")
    assert again.stderr.count("\n") == 1


async def test_send_refused_while_muted_exits_6_with_the_reason(server: ChatServer) -> None:
    await moderate(
        server, "mutes", {"type": "moderate", "action": "mute", "user": "bob", "duration": 600}
    )
    res = await arun_cli("send", "mutes", "let me talk", env=env(server, "bob"))
    assert res.returncode == 6
    assert res.stderr.startswith("chatctl: message not sent: muted in mutes by alice until ")
    assert "1 of 1 messages not sent" in res.stderr
    await moderate(server, "mutes", {"type": "moderate", "action": "unmute", "user": "bob"})
    assert (await arun_cli("send", "mutes", "thanks", env=env(server, "bob"))).returncode == 0


async def test_send_kicked_while_sending_stops_with_8(server: ChatServer) -> None:
    proc = await asyncio.create_subprocess_exec(
        *CHATCTL,
        "send",
        "kicksend",
        "--json",
        env=env(server, "bob"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"first\n")
    await proc.stdin.drain()
    ack = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
    assert ack["type"] == "ack"
    await moderate(server, "kicksend", {"type": "moderate", "action": "kick", "user": "bob"})
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 8
    assert err.decode() == "chatctl: kicked from kicksend by alice\n"


async def test_history_prints_tombstones_and_announcements(server: ChatServer) -> None:
    for text in ("keep this", "oops, wrong room"):
        res = await arun_cli("send", "tomb", text, env=env(server, "bob"))
        assert res.returncode == 0, res.stderr
    listed = await arun_cli("history", "tomb", "--json", env=env(server, "bob"))
    wrong = next(m for m in map(json.loads, listed.stdout.splitlines()) if "oops" in m["message"])
    async with client(server.port, "tomb", "bob") as ws:  # bob deletes his own message
        await recv_json(ws)
        await ws.send(json.dumps({"type": "delete", "id": wrong["id"], "client_id": "d1"}))
        while (await recv_json(ws))["type"] != "ack":
            pass
    plain = await arun_cli("history", "tomb", env=env(server, "carol"))
    lines = plain.stdout.splitlines()
    assert lines[0].endswith(" bob: keep this")
    assert lines[1].endswith(" bob: (message deleted)")
    assert lines[-1].endswith(f" -!- bob deleted their own message (#{wrong['id']})")
    assert "oops" not in plain.stdout
    js = await arun_cli("history", "tomb", "--json", env=env(server, "carol"))
    frames = [json.loads(line) for line in js.stdout.splitlines()]
    tomb = next(f for f in frames if f["id"] == wrong["id"])
    assert tomb["deleted"] is True and tomb["message"] == ""
    assert frames[-1]["moderation"] == {
        "action": "delete",
        "target": "bob",
        "target_id": wrong["id"],
    }
