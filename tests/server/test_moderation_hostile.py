"""Hostile users against moderation (issue 26, parts 4 and 6): a muted user trying every way
to be heard, a banned user trying every way back in, and tokens that only pretend to be a
moderator's. Each attempt is refused with a clear answer and changes nothing."""

from __future__ import annotations

import time

import jwt
import pytest
from websockets.exceptions import InvalidStatus

from chatctl.server import ChatServer
from support.curl import curl
from support.helpers import client, make_token, recv_type
from support.moderation import MOD, announcement, answer, closed


async def test_a_muted_user_is_not_heard_by_any_way(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "carol") as carol,
    ):
        await recv_type(alice, "welcome")
        await recv_type(carol, "welcome")
        mute = {"type": "moderate", "action": "mute", "user": "bob", "duration": "1h"}
        assert (await answer(alice, {**mute, "client_id": "m"}))["type"] == "ack"
        await announcement(carol)
        for n in range(3):  # new connections, new client ids, write-only or not
            params = {"receive": "0", "presence": "0"} if n % 2 else {}
            async with client(port, "general", "bob", **params) as bob:
                await recv_type(bob, "welcome")
                for k in range(3):
                    got = await answer(bob, {"message": "hi", "client_id": f"{n}-{k}"})
                    assert got["code"] == "muted"
                got = await answer(bob, {"message": "/me waves", "kind": "action"})
                assert got["code"] == "muted"
        hook = make_token("bob", rooms=["general"], hook="general")
        posted = await curl(port, f"/hooks/{hook}", "-d", "hi")
        assert posted.status == 403 and posted.json()["code"] == "muted"
        page = await answer(carol, {"type": "history", "limit": 50})
        assert [m["user"] for m in page["messages"]] == ["alice"]  # only the announcement


async def test_a_banned_user_is_not_let_back_in(server: ChatServer) -> None:
    port = server.port
    async with client(port, "general", "alice", token=MOD) as alice:
        await recv_type(alice, "welcome")
        ban = {"type": "moderate", "action": "ban", "user": "bob", "client_id": "b"}
        assert (await answer(alice, ban))["type"] == "ack"
        for params in ({}, {"receive": "0", "presence": "0"}, {"format": "text"}, {"since": "0"}):
            for _ in range(2):
                with pytest.raises(InvalidStatus) as info:
                    async with client(port, "general", "bob", **params):
                        pass
                assert info.value.response.status_code == 403
        # a moderator's token of bob's own does not lift a ban: a moderator cannot unban
        # themselves in, and is refused at the door like anyone banned
        with pytest.raises(InvalidStatus):
            async with client(port, "general", "bob", token=make_token("bob", mod_rooms=["*"])):
                pass
    assert server.metrics.counters.rejections[("banned", 403)] == 9


async def test_tokens_that_pretend_to_moderate_are_refused(server: ChatServer) -> None:
    port = server.port
    forged = jwt.encode(
        {"sub": "eve", "exp": time.time() + 60, "mod": ["*"]},
        b"not the server's key, 32 bytes or more",
    )
    with pytest.raises(InvalidStatus) as info:
        async with client(port, "general", "eve", token=forged):
            pass
    assert info.value.response.status_code == 401
    elsewhere = make_token("eve", mod_rooms=["ops", "general-*", "+dm+*"])
    async with (
        client(port, "general", "eve", token=elsewhere) as eve,
        client(port, "general", "bob") as bob,
    ):
        await recv_type(eve, "welcome")
        await recv_type(bob, "welcome")
        mine = await answer(bob, {"message": "mine", "client_id": "b"})
        for frame in (
            {"type": "moderate", "action": "kick", "user": "bob"},
            {"type": "moderate", "action": "ban", "user": "bob", "duration": 60},
            {"type": "moderate", "action": "unban", "user": "eve"},
            {"type": "delete", "id": mine["id"]},
        ):
            assert (await answer(eve, frame))["code"] == "forbidden"
        assert (await answer(bob, {"message": "still here", "client_id": "b2"}))["type"] == "ack"
        page = await answer(eve, {"type": "history", "limit": 10})
        assert [m["message"] for m in page["messages"]] == ["mine", "still here"]
    async with client(port, "general", "carol", token=MOD) as carol:
        await recv_type(carol, "welcome")
        kick = {"type": "moderate", "action": "kick", "user": "eve", "client_id": "k"}
        assert (await answer(carol, kick))["type"] == "ack"  # nobody to close: announced


async def test_a_kicked_user_that_comes_back_is_kicked_again_only_when_asked(
    server: ChatServer,
) -> None:
    port = server.port
    async with client(port, "general", "alice", token=MOD) as alice:
        await recv_type(alice, "welcome")
        for n in range(2):
            async with client(port, "general", "bob") as bob:
                await recv_type(bob, "welcome")
                kick = {"type": "moderate", "action": "kick", "user": "bob", "client_id": f"{n}"}
                assert (await answer(alice, kick))["type"] == "ack"
                assert (await closed(bob))[0] == 4003
