"""``/ws/{room}?format=text``: plain text both ways for websocat and wscat users (issue 25
item 3: a line typed in websocat got ``invalid_json``). Real websockets clients, one in the
plain-text mode and one speaking JSON, in the same room of a real server."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from chatctl.server import ChatServer
from support.helpers import client, make_token, recv_messages, recv_type, ws_url


async def line(ws: ClientConnection, timeout: float = 10) -> str:
    data = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(data, str)
    return data


async def presence(ws: ClientConnection) -> None:
    """Read frames until a presence change (``presence`` or ``presence_batch``) comes."""
    async with asyncio.timeout(10):
        while json.loads(await ws.recv())["type"] not in ("presence", "presence_batch"):
            pass


async def test_typed_lines_are_messages_and_deliveries_are_lines(server: ChatServer) -> None:
    async with client(server.port, "ops", "bob", history=0) as bob:
        await recv_type(bob, "welcome")
        async with client(server.port, "ops", "alice", format="text") as alice:
            await presence(bob)  # alice joined: she is a member like any other
            await alice.send("hello from websocat\n")  # a line as typed, newline and all
            await alice.send("/me waves")
            [hello, waves] = await recv_messages(bob, 2)
            assert (hello["user"], hello["message"], hello["kind"]) == (
                "alice",
                "hello from websocat",
                "text",
            )
            assert (waves["message"], waves["kind"]) == ("waves", "action")
            await bob.send(json.dumps({"message": "hi alice", "client_id": "b1"}))
            await recv_type(bob, "ack")
            # no welcome, ack, presence frame: only the lines
            assert [await line(alice) for _ in range(3)] == [
                "alice: hello from websocat",
                "* alice waves",
                "bob: hi alice",
            ]


async def test_history_first_then_no_presence_only_messages(server: ChatServer) -> None:
    async with client(server.port, "ops", "bob", history=0) as bob:
        await recv_type(bob, "welcome")
        for text in ("one", "two"):
            await bob.send(json.dumps({"message": text, "client_id": text}))
            await recv_type(bob, "ack")
        async with client(server.port, "ops", "alice", format="text", history=5) as alice:
            assert [await line(alice), await line(alice)] == ["bob: one", "bob: two"]
            async with client(server.port, "ops", "carol") as carol:  # a join and a leave
                await recv_type(carol, "welcome")
                await presence(bob)
            await bob.send(json.dumps({"message": "three", "client_id": "three"}))
            assert await line(alice) == "bob: three"  # carol's coming and going: not a line


async def test_errors_are_one_line(server: ChatServer) -> None:
    async with client(server.port, "ops", "alice", format="text", history=0) as alice:
        await alice.send("x" * 9000)
        assert await line(alice) == (
            "! message_too_long: message is 9000 characters; the limit is 8000"
        )
        await alice.send("   ")
        assert await line(alice) == "! invalid_field: message is empty"
        await alice.send(b"\xff\xfe")
        assert await line(alice) == "! invalid_frame: a binary frame that is not UTF-8 text"
        await alice.send('{"message": "json is text here"}')
        assert await line(alice) == 'alice: {"message": "json is text here"}'


async def test_json_is_still_the_default(server: ChatServer) -> None:
    async with client(server.port, "ops", "alice", format="json", history=0) as alice:
        await recv_type(alice, "welcome")
        await alice.send("plain words")
        error = await recv_type(alice, "error")
        assert error["code"] == "invalid_json"


@pytest.mark.parametrize("value", ["xml", "TEXT"])
async def test_a_bad_format_is_refused_before_the_upgrade(server: ChatServer, value: str) -> None:
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(server.port, "ops", format=value), additional_headers=headers):
            pass
    assert info.value.response.status_code == 400
    assert b"format must be json or text" in info.value.response.body


async def test_plain_and_json_members_of_one_room_each_get_their_form(
    server: ChatServer,
) -> None:
    """The hub encodes a message once per form: every JSON member gets the frame, every
    plain-text member the line."""
    async with (
        client(server.port, "big", "p1", format="text", history=0) as p1,
        client(server.port, "big", "p2", format="text", history=0) as p2,
        client(server.port, "big", "j1", history=0) as j1,
        client(server.port, "big", "j2", history=0) as j2,
    ):
        for ws in (j1, j2):
            await recv_type(ws, "welcome")
        await p1.send("one")
        [one] = await recv_messages(j1, 1)  # stored: the next one comes after it
        await j1.send(json.dumps({"message": "two"}))
        assert [one, *await recv_messages(j1, 1)] == await recv_messages(j2, 2)
        assert [one["message"], one["user"]] == ["one", "p1"]
        for ws in (p1, p2):
            assert [await line(ws), await line(ws)] == ["p1: one", "j1: two"]
