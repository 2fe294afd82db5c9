"""A connection whose user list is newer than the presence tick (welcomed, or answered a
``who``, in the middle of it) ends the tick with the server's list: a leave and a join that
cancel out for the others are told to it as the user's last state (issue 22, item 3)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from chatctl.broker.memory import MemoryBroker
from chatctl.server import ChatServer, ServerSettings, presence
from support.helpers import client, presence_changes, recv_json, recv_type, verifier


class Roster:
    """One real client's idea of the room's users, as a client keeps it: the welcome's list
    (or, when the welcome lists only part of the room, a ``who`` answer), then every
    ``presence`` and ``presence_batch`` frame applied in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.users: set[str] = set()
        self.welcomed = asyncio.Event()
        #: set by each ``who`` answer
        self.listed = asyncio.Event()

    async def follow(self, until: str, timeout: float = 60) -> set[str]:
        """Read frames until the message ``until``; return the list then."""
        while True:
            frame: dict[str, Any] = await recv_json(self.ws, timeout)
            if frame["type"] == "welcome":
                self.users = set(frame["users"])
                if frame["user_count"] > len(frame["users"]):
                    await self.ws.send('{"type": "who"}')
                self.welcomed.set()
            elif frame["type"] == "who":
                self.users = set(frame["users"])
                self.listed.set()
            elif frame["type"] == "message" and frame["message"] == until:
                return self.users
            for user, event in presence_changes(frame):
                (self.users.add if event == "join" else self.users.discard)(user)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    """Poll the server's state (which no frame announces) until ``check`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


async def quiet(srv: ChatServer, room: str) -> None:
    """Wait until the room's presence tick has ended (its next change goes out at once)."""

    async def ended() -> bool:
        return srv.hub.rooms[room].presence_timer is None

    await until(ended)


async def list_at_sync(
    broker: MemoryBroker, roster: Roster, follow: asyncio.Task[set[str]]
) -> None:
    """A message flushes the held presence before it: the client's list then is final."""
    await broker.publish("lobby", "system", "sync")
    assert await follow == set(await broker.users("lobby"))
    await roster.ws.send('{"type": "who"}')
    assert set((await recv_type(roster.ws, "who"))["users"]) == roster.users


@pytest.fixture
def long_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    # a tick long enough for a handshake whatever the machine's load: the changes below all
    # fall within it (the bug needs them to; the fix does not)
    monkeypatch.setattr(presence, "PRESENCE_TICK", 1.5)


@pytest.mark.usefixtures("long_tick")
async def test_a_user_back_within_the_tick_reaches_a_connection_welcomed_without_them() -> None:
    broker = MemoryBroker()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    await broker.join("lobby", "bob", "bob-1")
    async with srv, client(srv.port, "lobby", "alice") as alice:
        await recv_type(alice, "welcome")
        await quiet(srv, "lobby")
        await broker.join("lobby", "carol", "carol-1")  # opens a tick
        await broker.leave("lobby", "bob", "bob-1")  # held
        async with client(srv.port, "lobby", "dave") as dave:
            roster = Roster(dave)
            follow = asyncio.create_task(roster.follow("sync"))
            await roster.welcomed.wait()
            assert "bob" not in roster.users
            await broker.join("lobby", "bob", "bob-2")  # held: cancels bob's leave
            assert srv.hub.rooms["lobby"].presence_timer is not None  # all within the tick
            await list_at_sync(broker, roster, follow)
            assert "bob" in roster.users


@pytest.mark.usefixtures("long_tick")
async def test_a_user_gone_within_the_tick_leaves_no_ghost_at_a_connection_welcomed_with_them() -> (
    None
):
    broker = MemoryBroker()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv, client(srv.port, "lobby", "alice") as alice:
        await recv_type(alice, "welcome")
        await quiet(srv, "lobby")
        await broker.join("lobby", "carol", "carol-1")  # opens a tick
        await broker.join("lobby", "bob", "bob-1")  # held
        async with client(srv.port, "lobby", "dave") as dave:
            roster = Roster(dave)
            follow = asyncio.create_task(roster.follow("sync"))
            await roster.welcomed.wait()
            assert "bob" in roster.users
            await broker.leave("lobby", "bob", "bob-1")  # held: cancels bob's join
            assert srv.hub.rooms["lobby"].presence_timer is not None
            await list_at_sync(broker, roster, follow)
            assert "bob" not in roster.users


@pytest.mark.usefixtures("long_tick")
async def test_a_who_answer_within_the_tick_is_not_left_stale() -> None:
    broker = MemoryBroker()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    await broker.join("lobby", "bob", "bob-1")
    async with srv, client(srv.port, "lobby", "alice") as alice:
        roster = Roster(alice)
        follow = asyncio.create_task(roster.follow("sync"))
        await roster.welcomed.wait()
        await quiet(srv, "lobby")
        await broker.join("lobby", "carol", "carol-1")  # opens a tick
        await broker.leave("lobby", "bob", "bob-1")  # held
        await alice.send('{"type": "who"}')  # answered without bob, read by the roster
        await roster.listed.wait()
        assert "bob" not in roster.users
        await broker.join("lobby", "bob", "bob-2")  # cancels the leave
        await list_at_sync(broker, roster, follow)
        assert "bob" in roster.users


async def test_every_list_equals_who_after_a_storm_of_joins_leaves_and_rejoins() -> None:
    """200 users join, 100 of them leave, 50 of those come back at once, all overlapping;
    then every connected client's list (welcome + presence) is the server's ``who``."""
    broker = MemoryBroker()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    rng = random.Random(22)
    async with srv, AsyncExitStack() as stack:
        live: dict[str, tuple[Roster, asyncio.Task[set[str]]]] = {}

        async def connect(user: str) -> None:
            ws = await stack.enter_async_context(client(srv.port, "lobby", user))
            roster = Roster(ws)
            live[user] = (roster, asyncio.create_task(roster.follow("sync")))
            await roster.welcomed.wait()

        async def one(i: int) -> None:
            user = f"u{i:03}"
            await asyncio.sleep(rng.random() * 0.5)
            await connect(user)
            if i >= 100:
                return
            await asyncio.sleep(rng.random() * 0.3)
            roster, follow = live.pop(user)
            follow.cancel()
            await roster.ws.close()
            if i < 50:  # back at once: often within the same tick as the leave
                await connect(user)

        await asyncio.gather(*(one(i) for i in range(200)))
        expected = {f"u{i:03}" for i in (*range(50), *range(100, 200))}

        async def settled() -> bool:  # the server has seen every close
            return set(await broker.users("lobby")) == expected

        await until(settled)
        await broker.publish("lobby", "system", "sync")
        wrong = {}
        for user, (_, follow) in sorted(live.items()):
            users = await follow
            if users != expected:
                wrong[user] = (sorted(users - expected), sorted(expected - users))
        assert not wrong, f"{len(wrong)} clients' lists differ from who: {wrong}"
