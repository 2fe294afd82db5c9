"""``chatctl send @bob`` and ``chatctl history @alice``: the real CLI against a real server;
each side names the conversation by the other user (docs/protocol.md, "Direct messages")."""

from __future__ import annotations

import asyncio
import json

from chatctl.server import ChatServer
from support.client_helpers import CHATCTL, arun_cli, client_env
from support.helpers import make_token


def env(server: ChatServer, user: str) -> dict[str, str]:
    """A token for the room general only: conversations do not depend on the room globs."""
    return client_env(server.port, "", CHATCTL_TOKEN=make_token(user, rooms=["general"]))


async def test_send_to_a_user_and_read_it_back_from_both_sides(server: ChatServer) -> None:
    sent = await arun_cli("send", "@bob", "hello bob", env=env(server, "alice"))
    assert (sent.returncode, sent.stderr) == (0, "")
    piped = await arun_cli("send", "@bob", env=env(server, "alice"), input="one\ntwo\n")
    assert piped.returncode == 0
    reply = await arun_cli("send", "@alice", "hi alice", env=env(server, "bob"))
    assert reply.returncode == 0
    bob = await arun_cli("history", "@alice", "--json", env=env(server, "bob"))
    lines = [json.loads(line) for line in bob.stdout.splitlines()]
    assert [(m["room"], m["user"], m["message"]) for m in lines] == [
        ("@alice", "alice", "hello bob"),
        ("@alice", "alice", "one"),
        ("@alice", "alice", "two"),
        ("@alice", "bob", "hi alice"),
    ]
    alice = await arun_cli("history", "@bob", env=env(server, "alice"))
    assert [line.split(" ", 2)[2] for line in alice.stdout.splitlines()] == [
        "alice: hello bob",
        "alice: one",
        "alice: two",
        "bob: hi alice",
    ]
    carol = await arun_cli("history", "@alice", "--json", env=env(server, "carol"))
    assert (carol.returncode, carol.stdout) == (0, "")


async def test_a_bad_user_name_is_one_line_and_status_2(server: ChatServer) -> None:
    for name in ("@bad name", "@", "+dm+alice+bob"):
        res = await arun_cli("send", name, "x", env=env(server, "alice"))
        assert res.returncode == 2, name
        assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("chatctl: ")


async def test_a_token_created_with_no_dms_is_refused_them(server: ChatServer) -> None:
    created = await arun_cli(
        "token", "create", "--user", "alice", "--no-dms", env=client_env(server.port, "")
    )
    assert created.returncode == 0, created.stderr
    env = client_env(server.port, "", CHATCTL_TOKEN=created.stdout.strip())
    res = await arun_cli("send", "@bob", "x", env=env)
    assert res.returncode == 3
    assert res.stderr.strip().endswith("token for alice does not allow direct messages")
    assert (await arun_cli("send", "general", "still fine", env=env)).returncode == 0


async def test_a_piped_join_notes_unread_conversations_on_stderr(server: ChatServer) -> None:
    """``chatctl join ROOM`` piped: stdout keeps only the room's lines; the conversations
    with unread messages are noted on stderr, as its other notes are."""
    assert (await arun_cli("send", "@pat", "psst", env=env(server, "quinn"))).returncode == 0
    proc = await asyncio.create_subprocess_exec(
        *CHATCTL,
        "join",
        "general",
        env=env(server, "pat"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert line.decode() == (
            "chatctl: 1 unread direct message(s) from quinn: chatctl join @quinn\n"
        )
    finally:
        proc.terminate()
        out, _ = await proc.communicate()
    assert out == b""
