"""Presence that scales: a room's changes coalesced into one frame per tick, never reordered
with its messages, and welcomes that list a bounded number of users."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack

import pytest

from chatctl.broker.base import Deliver
from chatctl.broker.memory import MemoryBroker
from chatctl.protocol import Presence, PresenceBatch, parse_server_frame, type_name
from chatctl.server import ChatServer, ServerSettings, replay
from chatctl.server.presence import MAX_PRESENCE_TICK, PRESENCE_TICK, presence_tick
from support.helpers import client, presence_changes, recv_json, recv_presence, recv_type, verifier


class Tapped(MemoryBroker):
    """A memory broker that lets the test deliver events to the server's subscription."""

    def __init__(self) -> None:
        super().__init__()
        self.delivers: dict[str, Deliver] = {}

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        self.delivers[room] = deliver
        await super().subscribe(room, deliver)


def join(user: str) -> Presence:
    return Presence("lobby", user, "join", 1.0)


def leave(user: str) -> Presence:
    return Presence("lobby", user, "leave", 2.0)


async def test_a_burst_of_changes_costs_one_frame_per_tick() -> None:
    broker = Tapped()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        deliver = broker.delivers["lobby"]
        await asyncio.sleep(MAX_PRESENCE_TICK)  # alice's own join opened a tick: let it end
        for i in range(500):
            deliver(join(f"u{i}"))
        # a quiet room's first change goes out at once, the other 499 at the end of the tick
        first = await recv_json(ws)
        assert (first["type"], first["user"], first["event"]) == ("presence", "u0", "join")
        batch = await recv_json(ws)
        assert batch["type"] == "presence_batch" and batch["leaves"] == []
        assert batch["joins"] == [f"u{i}" for i in range(1, 500)]


async def test_a_change_undone_within_the_tick_is_not_sent() -> None:
    broker = Tapped()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        deliver = broker.delivers["lobby"]
        await asyncio.sleep(MAX_PRESENCE_TICK)
        deliver(join("bob"))  # at once
        deliver(join("carol"))  # carol comes and goes within the tick: nobody hears of her
        deliver(leave("carol"))
        deliver(leave("bob"))
        deliver(join("bob"))  # bob's reconnect: nothing changed either
        deliver(leave("dave"))
        assert await recv_presence(ws) == [("bob", "join")]
        # one change left: sent as the plain presence frame every client knows
        frame = await recv_json(ws)
        assert (frame["type"], frame["user"], frame["event"]) == ("presence", "dave", "leave")


async def test_presence_is_never_reordered_with_messages() -> None:
    broker = Tapped()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        deliver = broker.delivers["lobby"]
        deliver(join("bob"))  # alice's tick is still running: held...
        deliver(join("carol"))
        await broker.publish("lobby", "bob", "hi")  # ...until bob's message
        assert sorted(await recv_presence(ws)) == [("bob", "join"), ("carol", "join")]
        msg = await recv_json(ws)
        assert (msg["type"], msg["user"], msg["message"]) == ("message", "bob", "hi")


async def test_a_join_storm_reaches_everyone_in_few_frames() -> None:
    srv = ChatServer(ServerSettings(port=0), verifier(), MemoryBroker())
    n = 60
    async with srv, client(srv.port, "lobby", "alice") as alice, AsyncExitStack() as stack:
        await recv_type(alice, "welcome")
        conns = await asyncio.gather(
            *(stack.enter_async_context(client(srv.port, "lobby", f"u{i}")) for i in range(n))
        )
        for ws in conns:
            welcome = await recv_type(ws, "welcome")
            assert welcome["user_count"] >= len(welcome["users"])
        joined: set[str] = set()
        frames_seen = 0
        while len(joined) < n:
            changes = await recv_presence(alice)
            frames_seen += 1
            joined.update(u for u, event in changes if event == "join")
        assert joined == {f"u{i}" for i in range(n)}
        assert frames_seen < n  # coalesced: not one frame per join


async def test_the_welcome_lists_the_first_users_and_counts_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay, "MAX_WELCOME_USERS", 2)
    srv = ChatServer(ServerSettings(port=0), verifier(), MemoryBroker())
    async with srv, AsyncExitStack() as stack:
        for user in ("carol", "alice", "bob"):
            ws = await stack.enter_async_context(client(srv.port, "lobby", user))
            await recv_type(ws, "welcome")
        async with client(srv.port, "lobby", "dave") as dave:
            welcome = await recv_type(dave, "welcome")
            assert welcome["users"] == ["alice", "bob"] and welcome["user_count"] == 4
            assert parse_server_frame(json.dumps(welcome)).total_users == 4  # type: ignore[union-attr]
            await dave.send('{"type": "who"}')
            assert (await recv_type(dave, "who"))["users"] == ["alice", "bob", "carol", "dave"]


def test_clients_read_a_batch_as_its_changes() -> None:
    frame = PresenceBatch("lobby", ("bob", "carol"), ("dave",), 5.0)
    parsed = parse_server_frame(frame.frame)
    assert parsed == frame and type_name(parsed) == "presence_batch"
    assert presence_changes(json.loads(frame.frame)) == [
        ("dave", "leave"),
        ("bob", "join"),
        ("carol", "join"),
    ]
    assert parsed.presences() == [
        Presence("lobby", "dave", "leave", 5.0),
        Presence("lobby", "bob", "join", 5.0),
        Presence("lobby", "carol", "join", 5.0),
    ]
    assert frame.without_join("bob").joins == ("carol",)


@pytest.mark.parametrize("user", ["bob", 'a"b', "é", "carol", "nobody", "bob,"])
def test_a_batch_without_one_join_is_the_same_frame_cut(user: str) -> None:
    """The frame written to a connection that joined during the tick: cut from the batch's
    encoded pieces, it must be exactly the frame of the batch without that join."""
    frame = PresenceBatch("bob", ("bob", 'a"b', "é", "carol", "bob,"), ("dave",), 5.25)
    expected = frame.without_join(user)
    assert frame.frame_without_join(user) == expected.frame
    assert json.loads(frame.frame) == {
        "type": "presence_batch",
        "room": "bob",
        "joins": ["bob", 'a"b', "é", "carol", "bob,"],
        "leaves": ["dave"],
        "ts": 5.25,
    }
    alone = PresenceBatch("r", (user,), (), 1.0)
    assert alone.frame_without_join(user) is None


def test_the_tick_grows_with_the_room_and_is_bounded() -> None:
    assert presence_tick(1) == PRESENCE_TICK
    assert presence_tick(2000) == pytest.approx(1.0)
    assert presence_tick(10**6) == MAX_PRESENCE_TICK
