"""Direct messages on every broker: a real server object per registered broker, real
websockets clients (docs/protocol.md, "Direct messages").

A conversation is a room of the broker under an internal name: acks, de-duplication, order,
resume and history are the room machinery's, and the recipient's inbox (another internal
room) tells each of their connections, and their next one, of unread messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from chatctl.broker import BROKERS, create_broker
from chatctl.broker.registry import option_keywords
from chatctl.server import ChatServer, ServerSettings
from support.broker_services import BrokerServices, entry_named
from support.curl import curl
from support.helpers import client, make_token, recv_json, recv_type, verifier

#: tokens that allow one room only: a conversation does not depend on the room globs
ONLY_GENERAL = ["general"]


@pytest.fixture(params=[entry.name for entry in BROKERS])
async def port(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """A server on each registered broker (as its registry entry's test hook starts it)."""
    entry = entry_named(request.param)
    services = BrokerServices(request, lambda: request.getfixturevalue("module_redis"))
    target = entry.test(services)
    broker = create_broker(
        target.url, history_size=100, dedup_window=60.0, **option_keywords(target.options)
    )
    server = ChatServer(ServerSettings(port=0, history_size=100), verifier(), broker)
    async with server:
        yield server.port


@pytest.fixture(params=[entry.name for entry in BROKERS if entry.shared])
async def two_nodes(request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, int]]:
    """Two servers (nodes) sharing one broker, for each broker that nodes share."""
    entry = entry_named(request.param)
    services = BrokerServices(request, lambda: request.getfixturevalue("module_redis"))
    target = entry.test(services)
    servers = [
        ChatServer(
            ServerSettings(port=0, history_size=100),
            verifier(),
            create_broker(
                target.url, history_size=100, dedup_window=60.0, **option_keywords(target.options)
            ),
        )
        for _ in range(2)
    ]
    async with servers[0], servers[1]:
        yield servers[0].port, servers[1].port


def dm(port: int, user: str, peer: str, **params: Any) -> Any:
    token = make_token(user, rooms=ONLY_GENERAL)
    return client(port, f"@{peer}", user, token=token, **params)


async def say(ws: ClientConnection, text: str, client_id: str) -> dict[str, Any]:
    await ws.send(f'{{"type":"message","message":"{text}","client_id":"{client_id}"}}')
    while True:
        frame = await recv_json(ws)
        if frame["type"] in ("ack", "error") and frame.get("client_id") == client_id:
            return frame


async def test_acks_dedup_order_history_and_resume(port: int) -> None:
    async with dm(port, "alice", "bob") as alice:
        welcome = await recv_type(alice, "welcome")
        assert (welcome["room"], welcome["history"]) == ("@bob", [])
        acks = [await say(alice, f"m{i}", f"c{i}") for i in range(3)]
        assert [a["id"] for a in acks] == [1, 2, 3]
        assert {a["room"] for a in acks} == {"@bob"}
        again = await say(alice, "m0", "c0")
        assert (again["id"], again["duplicate"]) == (1, True)
    async with dm(port, "bob", "alice") as bob:
        welcome = await recv_type(bob, "welcome")
        assert welcome["room"] == "@alice"
        assert [(m["user"], m["message"]) for m in welcome["history"]] == [
            ("alice", "m0"),
            ("alice", "m1"),
            ("alice", "m2"),
        ]
        epoch = welcome["epoch"]
        await say(bob, "hi alice", "b1")
    async with dm(port, "alice", "bob") as alice:
        await recv_type(alice, "welcome")
        for i in range(3, 5):
            await say(alice, f"m{i}", f"c{i}")
    async with dm(port, "bob", "alice", since=4, epoch=epoch) as bob:
        resumed = await recv_type(bob, "welcome")
    assert resumed["recovered"] is True
    assert [(m["id"], m["message"]) for m in resumed["history"]] == [(5, "m3"), (6, "m4")]


async def test_recipient_hears_on_every_connection_and_at_next_connect(port: int) -> None:
    bob_token = make_token("bob", rooms=ONLY_GENERAL)
    async with client(port, "general", "bob", token=bob_token) as general:
        await recv_type(general, "welcome")
        async with dm(port, "alice", "bob") as alice:
            await recv_type(alice, "welcome")
            await say(alice, "one", "c1")
            assert await recv_type(general, "dm") == {
                "type": "dm",
                "user": "alice",
                "room": "@alice",
                "unread": 1,
            }
            await say(alice, "two", "c2")
            assert (await recv_type(general, "dm"))["unread"] == 2
    # offline: told after the welcome of his next connection, wherever it is
    async with client(port, "general", "bob", token=bob_token) as later:
        await recv_type(later, "welcome")
        notice = await recv_type(later, "dm")
        assert (notice["user"], notice["unread"]) == ("alice", 2)
        # reading the conversation tells his other connections it is read
        async with dm(port, "bob", "alice") as reading:
            welcome = await recv_type(reading, "welcome")
            assert [m["message"] for m in welcome["history"]] == ["one", "two"]
            assert (await recv_type(later, "dm"))["unread"] == 0
            # while he reads it, new messages are not counted as unread
            async with dm(port, "alice", "bob") as alice:
                await recv_type(alice, "welcome")
                await say(alice, "three", "c3")
            assert (await recv_type(reading, "message"))["message"] == "three"
    async with client(port, "general", "bob", token=bob_token) as fresh:
        await recv_type(fresh, "welcome")
        # read: nothing about alice; the next notice is about someone else
        async with dm(port, "carol", "bob") as carol:
            await recv_type(carol, "welcome")
            await say(carol, "hey", "k1")
        notice = await recv_type(fresh, "dm")
        assert (notice["user"], notice["unread"]) == ("carol", 1)


async def test_a_third_user_sees_nothing_of_it(port: int) -> None:
    async with dm(port, "alice", "bob") as alice:
        await recv_type(alice, "welcome")
        await say(alice, "secret", "s1")
    for peer in ("alice", "bob"):
        async with dm(port, "carol", peer) as carol:
            welcome = await recv_type(carol, "welcome")
            assert welcome["history"] == []


async def test_notices_and_messages_cross_nodes(two_nodes: tuple[int, int]) -> None:
    a, b = two_nodes
    bob_token = make_token("bob", rooms=ONLY_GENERAL)
    async with client(b, "general", "bob", token=bob_token) as general:
        await recv_type(general, "welcome")
        async with dm(a, "alice", "bob") as alice:
            await recv_type(alice, "welcome")
            await say(alice, "across", "x1")
            notice = await recv_type(general, "dm")  # told on node b of a publish on node a
            assert (notice["user"], notice["unread"]) == ("alice", 1)
            async with dm(a, "bob", "alice") as reading:
                welcome = await recv_type(reading, "welcome")
                assert [m["message"] for m in welcome["history"]] == ["across"]
                assert (await recv_type(general, "dm"))["unread"] == 0
                async with dm(b, "alice", "bob") as alice_b:
                    await recv_type(alice_b, "welcome")
                    await say(alice_b, "from b", "x2")
                assert (await recv_type(reading, "message"))["message"] == "from b"


async def test_no_node_lists_a_conversation(two_nodes: tuple[int, int]) -> None:
    """GET /rooms lists rooms with members on any node (a shared broker's directory): never
    a conversation, an inbox or the notices room, to a token that allows every room."""
    a, b = two_nodes
    async with dm(a, "alice", "bob") as alice, dm(a, "bob", "alice") as bob:
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        await say(alice, "hi", "l1")
        async with client(a, "general", "carol") as general:
            await recv_type(general, "welcome")
            for port in (a, b):
                listed = (await curl(port, "/rooms", token=make_token("carol"))).json()["rooms"]
                assert [r["room"] for r in listed] == ["general"], listed
