"""The interactive ``chatctl join`` when its token expires (issue 15 item 5): the window stays
open, says why it is offline, and reconnects once the token file holds a new token. A real
pty (pexpect) against an in-process server that closes at ``exp`` + 0.5 s."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pexpect

from chatctl.server import ChatServer
from support.client_helpers import client_env
from support.helpers import SHORT_TTL, client, recv_type, timed_token

#: what may stand between two words of a wrapped, styled line
GAP = r"(?:\s|\x1b\[[0-9;]*m)+"


async def expect(child: pexpect.spawn, pattern: str) -> None:
    await asyncio.to_thread(child.expect, pattern)


async def test_an_expired_token_keeps_the_window_open(
    leeway_server: ChatServer, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(timed_token("alice", SHORT_TTL))
    env = client_env(leeway_server.port, "", TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    env["NO_COLOR"] = "1"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "chatctl", "join", "general", "--token-file", str(path)],
        env=env,
        encoding="utf-8",
        timeout=15,
        # the notice names the token file: under pytest-xdist its path is longer
        # (.../popen-gw0/...) and a 200-column line wrapped inside the expected text
        dimensions=(40, 1000),
    )
    try:
        await expect(child, "joined general as alice")
        await expect(child, "waiting for a new one from --token-file")
        await expect(child, "waiting for a new token from --token-file")
        # the line is wrapped (and styled) at the window's width: any break between words
        words = re.split(" ", "offline until then: what you type is sent then")
        await expect(child, GAP.join(words))
        child.send("typed while offline\r")
        path.write_text(timed_token("alice", 3600))
        await expect(child, "token renewed from --token-file")
        await expect(child, "reconnected to general")
        await expect(child, "alice: typed while offline")
        async with client(leeway_server.port, "general", "bob") as ws:
            await recv_type(ws, "welcome")
            await ws.send(json.dumps({"message": "welcome back"}))
            await expect(child, "bob: welcome back")
        assert child.isalive()
        child.send("/quit\r")
        await asyncio.to_thread(child.expect, pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
