"""``chatctl send --http``: the real command posting through the HTTP API of a server in this
process, with the acks, order and exit statuses of ``chatctl send``."""

from __future__ import annotations

import asyncio
import json
import sys

from chatctl.server import ChatServer
from support.helpers import chatctl_env, client, free_port, make_server, make_token, recv_type


async def send_http(
    port: int, *args: str, stdin: bytes | None = None, token: str | None = None
) -> tuple[int, str, str]:
    env = chatctl_env(CHATCTL_TOKEN=token or make_token("alice"))
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "chatctl", "send", "--http"),
        *("--server", f"ws://127.0.0.1:{port}", *args),
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin or b"")
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_send_http_delivers_in_order_with_acks(server: ChatServer) -> None:
    async with client(server.port, "general", "bob") as bob:
        await recv_type(bob, "welcome")
        status, out, err = await send_http(
            server.port, "general", "--json", stdin=b"one\ntwo\n\nthree\n"
        )
        assert status == 0, err
        acks = [json.loads(line) for line in out.splitlines()]
        assert [a["id"] for a in acks] == [1, 2, 3] and all(a["type"] == "ack" for a in acks)
        got = [(await recv_type(bob, "message"))["message"] for _ in range(3)]
        assert got == ["one", "two", "three"]


async def test_send_http_exit_statuses() -> None:
    srv = make_server(max_message_chars=5)
    async with srv:
        status, _, err = await send_http(srv.port, "general", "too long for it")
        assert status == 6 and "HTTP 413" in err
        status, _, err = await send_http(srv.port, "general", "hi", token="nope")
        assert status == 3
        other = make_token("alice", rooms=["ops"])
        assert (await send_http(srv.port, "general", "hi", token=other))[0] == 3
        assert (await send_http(srv.port, "general", "hi"))[0] == 0
    status, _, err = await send_http(free_port(), "general", "hi", "--timeout", "1")
    assert status == 4, err
