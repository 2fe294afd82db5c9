"""A third user against a direct conversation: every room name, path and encoding of the
WebSocket handshake and the HTTP API (real server, real websockets clients, the real curl),
and what turning direct messages off does. Only alice and bob ever see or write their
conversation; every attempt is refused or lands in carol's own conversation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from chatctl.protocol import dm_room, inbox_room
from chatctl.server import ChatServer
from support.curl import curl, curl_stream
from support.helpers import client, make_server, make_token, recv_json, recv_type, timed_token

INTERNAL = dm_room("alice", "bob")  # +dm+alice+bob
SECRET_TEXT = "the launch code is 0000"


async def _secret(port: int) -> None:
    """alice writes to bob (tokens for general only: the room globs do not matter)."""
    async with client(port, "@bob", "alice", token=make_token("alice", rooms=["general"])) as ws:
        await recv_type(ws, "welcome")
        await ws.send(f'{{"message": "{SECRET_TEXT}", "client_id": "s1"}}')
        assert (await recv_type(ws, "ack"))["id"] == 1


async def _status(port: int, path: str, user: str = "carol", **claims: Any) -> int:
    token = timed_token(user, 3600, **claims)
    try:
        async with client(port, path, user, token=token) as ws:
            welcome = await recv_type(ws, "welcome")
            assert SECRET_TEXT not in str(welcome)
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


#: handshake paths a hostile carol (token for every room) may try, and the status each gets
WS_PATHS = [
    (INTERNAL, 400),
    ("%2Bdm%2Balice%2Bbob", 400),
    ("%252Bdm%252Balice%252Bbob", 400),
    ("+dm+bob+alice", 400),
    (inbox_room("bob"), 400),
    ("%2Binbox%2Bbob", 400),
    ("dm+alice+bob", 400),
    ("@alice", 101),  # carol's own conversation with alice: empty
    ("@bob", 101),
    ("%40bob", 101),
    (f"@{INTERNAL}", 101),  # a conversation with the user "+dm+alice+bob"
    ("@alice+bob", 101),
    ("@alice%2Bbob", 101),
    ("@", 400),
    ("@a%20b", 400),
    ("@a%E2%80%8Bb", 400),  # U+200B in the name
]


async def test_no_websocket_path_reaches_the_conversation() -> None:
    async with make_server() as server:
        await _secret(server.port)
        for path, status in WS_PATHS:
            assert await _status(server.port, path) == status, path
        # ...and the conversation is as alice left it, for bob
        async with client(server.port, "@alice", "bob") as bob:
            welcome = await recv_type(bob, "welcome")
        assert [(m["user"], m["message"]) for m in welcome["history"]] == [("alice", SECRET_TEXT)]


HTTP_NAMES = [
    ("%2Bdm%2Balice%2Bbob", 400),
    ("+dm+alice+bob", 400),
    ("%252Bdm%252Balice%252Bbob", 400),
    ("%2Binbox%2Bbob", 400),
    ("@bob", 200),  # carol's own
    ("%40alice", 200),
    ("@", 400),
]


async def test_no_http_path_reaches_the_conversation() -> None:
    async with make_server() as server:
        port, token = server.port, make_token("carol")
        await _secret(port)
        async with client(port, "@alice", "bob"):  # the conversation is live on the node
            for name, status in HTTP_NAMES:
                read = await curl(port, f"/rooms/{name}/messages", token=token)
                assert read.status == status, name
                assert SECRET_TEXT.encode() not in read.body
                users = await curl(port, f"/rooms/{name}/users", token=token)
                assert users.status == status, name
                assert status != 200 or users.json()["users"] == [], name
                post = await curl(port, f"/rooms/{name}/messages", "-d", "hi", token=token)
                assert post.status == (201 if status == 200 else status), name
            listed = (await curl(port, "/rooms", token=token)).json()["rooms"]
            assert all(r["room"][0] not in "+@" for r in listed), listed
            url = f"/rooms/%2Bdm%2Balice%2Bbob/events?token={token}"
            refused = await curl(port, url)
            assert refused.status == 400
            async with curl_stream(port, f"/rooms/@alice/events?token={token}") as own:
                welcome = await own.until("welcome")
                assert welcome["room"] == "@alice" and "alice" not in welcome["users"]
        async with client(port, "@alice", "bob") as bob:
            welcome = await recv_type(bob, "welcome")
        assert [m["message"] for m in welcome["history"]] == [SECRET_TEXT]


async def test_dms_off_and_a_token_that_forbids_them() -> None:
    async with make_server(dms=False) as server:
        assert await _status(server.port, "@bob") == 403
        post = await curl(server.port, "/rooms/@bob/messages", "-d", "x", token=make_token("a"))
        assert post.status == 403 and "turned off" in post.json()["reason"]
        assert await _status(server.port, "general") == 101  # rooms as before
    async with make_server() as server:
        assert await _status(server.port, "@bob", dms=False) == 403
        assert await _status(server.port, "general", dms=False) == 101
        assert await _status(server.port, "@bob", dms="no") == 401
        token = timed_token("carol", 3600, dms=False)
        post = await curl(server.port, "/rooms/@bob/messages", "-d", "x", token=token)
        assert post.status == 403


async def test_a_refresh_that_forbids_dms_is_refused_and_the_connection_lives(
    server: ChatServer,
) -> None:
    async with client(server.port, "@bob", "alice") as ws:
        await recv_type(ws, "welcome")
        token = timed_token("alice", 3600, dms=False)
        await ws.send(json.dumps({"type": "refresh", "token": token}))
        error = await recv_type(ws, "error")
        assert error["code"] == "forbidden" and "direct messages" in error["reason"]
        await ws.send('{"message": "still here", "client_id": "k"}')
        assert (await recv_type(ws, "ack"))["room"] == "@bob"


@pytest.mark.parametrize("name", ["+dm+alice+bob", "+inbox+bob", "+x"])
def test_the_room_rule_refuses_the_reserved_prefix(name: str) -> None:
    from chatctl.protocol import valid_room, valid_stored_room

    assert not valid_room(name)
    assert valid_stored_room(dm_room("alice", "bob")) and valid_stored_room(inbox_room("bob"))
    assert not valid_stored_room("+dm+bob+alice")  # not the canonical order


async def test_bad_frames_in_a_conversation_get_an_error_and_it_lives(server: ChatServer) -> None:
    async with client(server.port, "@bob", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send("{not json")
        assert (await recv_json(ws))["type"] == "error"
        await ws.send('{"message": "ok", "client_id": "k"}')
        assert (await recv_type(ws, "ack"))["id"] == 1


async def test_read_only_globs_do_not_make_a_conversation_read_only(server: ChatServer) -> None:
    """A token that only reads every room (``read_rooms: ["*"]``) still writes to bob."""
    token = make_token("alice", rooms=[], read_rooms=["*"])
    async with client(server.port, "@bob", "alice", token=token) as ws:
        await recv_type(ws, "welcome")
        await ws.send('{"message": "hi bob", "client_id": "r1"}')
        assert (await recv_type(ws, "ack"))["room"] == "@bob"
    post = await curl(server.port, "/rooms/@bob/messages", "-d", "again", token=token)
    assert post.status == 201 and post.json()["room"] == "@bob"
    async with client(server.port, "general", "alice", token=token) as ws:  # rooms: read only
        await recv_type(ws, "welcome")
        await ws.send('{"message": "no", "client_id": "r2"}')
        assert (await recv_type(ws, "error"))["code"] == "read_only"
