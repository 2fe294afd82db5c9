"""Read-only rooms (issue 26, part 3): a token's ``read_rooms`` may be joined and read; a
message there is refused with ``read_only`` and the connection goes on; the HTTP API's
publish is refused the same way; a refresh never takes a connection's write away."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from chatctl.server import ChatServer
from support.curl import curl
from support.helpers import client, make_token, recv_type


async def answer(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send ``frame``; the first answer that is not room traffic."""
    await ws.send(json.dumps(frame))
    while True:
        got = json.loads(await ws.recv())
        if got["type"] not in ("message", "presence", "presence_batch"):
            return dict(got)


async def test_a_read_only_room_is_read_and_its_writes_refused(server: ChatServer) -> None:
    reader = make_token("eve", rooms=["*"], read_rooms=["news"])
    async with (
        client(server.port, "news", "editor") as editor,
        client(server.port, "news", "eve", token=reader) as eve,
    ):
        await recv_type(editor, "welcome")
        await recv_type(eve, "welcome")
        ack = await answer(editor, {"message": "release 2.0 is out", "client_id": "e1"})
        assert ack["type"] == "ack"
        assert (await recv_type(eve, "message"))["message"] == "release 2.0 is out"

        refused = await answer(eve, {"message": "me too", "client_id": "m1"})
        assert refused == {
            "type": "error",
            "code": "read_only",
            "reason": "token for eve only reads room news",
            "client_id": "m1",
        }
        # the connection lives on: a following allowed action succeeds
        assert await answer(eve, {"type": "ping", "data": 1}) == {"type": "pong", "data": 1}
        who = await answer(eve, {"type": "who"})
        assert who["users"] == ["editor", "eve"]
        ack = await answer(editor, {"message": "second", "client_id": "e2"})
        assert ack["id"] == 2  # eve's refused message took no id
        assert (await recv_type(eve, "message"))["message"] == "second"
    assert server.metrics.counters.errors.get("read_only") == 1


async def test_the_same_token_writes_its_other_rooms(server: ChatServer) -> None:
    token = make_token("eve", rooms=["*"], read_rooms=["news"])
    async with client(server.port, "general", "eve", token=token) as ws:
        await recv_type(ws, "welcome")
        assert (await answer(ws, {"message": "hi", "client_id": "c1"}))["type"] == "ack"


async def test_read_rooms_alone_allow_nothing_else(server: ChatServer) -> None:
    from websockets.exceptions import InvalidStatus

    token = make_token("eve", read_rooms=["news"])
    try:
        async with client(server.port, "general", "eve", token=token):
            raise AssertionError("joined a room the token does not name")
    except InvalidStatus as exc:
        assert exc.response.status_code == 403


async def test_the_http_api_refuses_a_post_to_a_read_only_room(server: ChatServer) -> None:
    token = make_token("eve", rooms=["general"], read_rooms=["news"])
    refused = await curl(server.port, "/rooms/news/messages", "-d", "hi", token=token)
    assert refused.status == 403
    assert refused.json() == {
        "type": "error",
        "code": "read_only",
        "reason": "token for eve only reads room news",
    }
    history = await curl(server.port, "/rooms/news/messages", token=token)
    assert history.status == 200
    posted = await curl(server.port, "/rooms/general/messages", "-d", "hi", token=token)
    assert posted.status == 201


async def test_a_refresh_keeps_a_connections_write(server: ChatServer) -> None:
    async with client(server.port, "news", "eve") as ws:
        await recv_type(ws, "welcome")
        demoted = make_token("eve", read_rooms=["news"])
        refused = await answer(ws, {"type": "refresh", "token": demoted})
        assert refused["code"] == "forbidden"
        assert refused["reason"] == "token for eve only reads room news: reconnect with it"
        assert (await answer(ws, {"message": "still mine", "client_id": "c1"}))["type"] == "ack"
    reader = make_token("eve", read_rooms=["news"])
    async with client(server.port, "news", "eve", token=reader) as ws:
        await recv_type(ws, "welcome")
        # a read-only connection may take a writing token: it writes from then on
        promoted = await answer(ws, {"type": "refresh", "token": make_token("eve")})
        assert promoted["type"] == "refreshed"
        assert (await answer(ws, {"message": "now I may", "client_id": "c2"}))["type"] == "ack"


async def test_chatctl_send_to_a_read_only_room_says_so_and_exits_6(server: ChatServer) -> None:
    import asyncio
    import sys

    from support.helpers import chatctl_env

    token = make_token("eve", rooms=["*"], read_rooms=["news"])
    for via in ((), ("--http",)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "chatctl", "send", *via, "--server", f"ws://127.0.0.1:{server.port}"),
            *("news", "me too"),
            env=chatctl_env(CHATCTL_TOKEN=token),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 6, (via, err)
        assert "token for eve only reads room news" in err.decode()
