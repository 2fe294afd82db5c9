"""The client event stream against real servers: typed events, state changes, resend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatctl.broker.base import PublishResult
from chatctl.broker.memory import MemoryBroker
from chatctl.client.backoff import Backoff
from chatctl.client.events import (
    Acked,
    Closed,
    Connected,
    Connecting,
    Deferred,
    Disconnected,
    Event,
    Reconnecting,
)
from chatctl.client.settings import resolve_settings
from chatctl.client.stream import RoomStream
from chatctl.errors import BrokerError, ConnectError
from chatctl.protocol import Message, UserList, Who
from chatctl.server import ChatServer, ServerSettings
from support.helpers import client, free_port, make_token, recv_type, verifier


def stream(port: int, room: str = "ops", **kw: object) -> RoomStream:
    settings = resolve_settings(
        env={"CHATCTL_TOKEN": make_token("alice")}, server=f"ws://127.0.0.1:{port}"
    )
    return RoomStream(settings, room, backoff=Backoff(initial=0.05, cap=0.2), **kw)  # type: ignore[arg-type]


async def until(events: AsyncIterator[Event], kind: type, timeout: float = 10) -> list[Event]:
    """The events up to and including the first of type ``kind``."""
    seen: list[Event] = []
    async with asyncio.timeout(timeout):
        async for event in events:
            seen.append(event)
            if isinstance(event, kind):
                return seen
    raise AssertionError(f"the stream ended before a {kind.__name__}: {seen}")


async def test_typed_events_from_welcome_to_close(server: ChatServer) -> None:
    async with client(server.port, "ops", "bob", history=0) as bob:
        await recv_type(bob, "welcome")
        await bob.send('{"message": "before", "client_id": "b1"}')
        await recv_type(bob, "ack")
        async with stream(server.port, history=5) as s:
            events = aiter(s)
            first = await until(events, Connected)
            assert isinstance(first[0], Connecting) and first[0].attempt == 1
            connected = first[-1]
            assert isinstance(connected, Connected) and not connected.resume.reconnect
            assert [m.text for m in connected.resume.new_history] == ["before"]
            assert s.connected and connected.welcome.user == "alice"

            await bob.send('{"message": "live"}')
            [*_, live] = await until(events, Message)
            assert isinstance(live, Message) and (live.user, live.text) == ("bob", "live")

            sent = await s.send("hello", "action")
            [*_, acked] = await until(events, Acked)
            assert isinstance(acked, Acked) and acked.pending is sent and not s.outbox
            assert await s.request(Who())
            [*_, who] = await until(events, UserList)
            assert isinstance(who, UserList) and set(who.users) == {"alice", "bob"}

            await s.close()
            assert isinstance((await until(events, Closed))[-1], Closed)
            assert not s.connected


async def test_offline_messages_are_resent_once_after_the_server_is_back() -> None:
    port = free_port()

    def start() -> ChatServer:
        return ChatServer(ServerSettings(port=port), verifier(), broker)

    broker = MemoryBroker()  # kept across the restart: the room's history survives
    first = start()
    await first.start()
    async with stream(port, history=0) as s:
        events = aiter(s)
        await until(events, Connected)
        await first.stop()
        await until(events, Disconnected)
        pending = [s.add(f"queued {i}") for i in range(3)]
        [*_, retry] = await until(events, Reconnecting)
        assert isinstance(retry, Reconnecting) and "refused" in retry.reason
        second = start()
        await second.start()
        try:
            [*_, back] = await until(events, Connected)
            assert isinstance(back, Connected) and back.resume.reconnect
            assert back.resending == 3
            new = await s.send("new")  # written at once: still after the three re-sent
            acked = [e for e in await until(events, Acked) if isinstance(e, Acked)]
            while len(acked) < 4:
                acked += [e for e in await until(events, Acked) if isinstance(e, Acked)]
            assert [a.pending for a in acked] == [*pending, new] and not s.outbox
            async with client(port, "ops", "bob", since=0) as bob:
                welcome = await recv_type(bob, "welcome")
            texts = [m["message"] for m in welcome["history"]]
            assert texts == [f"queued {i}" for i in range(3)] + ["new"]
        finally:
            await second.stop()


async def test_no_server_within_the_connect_timeout_is_a_connect_error() -> None:
    port = free_port()
    async with stream(port, connect_timeout=0.5) as s:
        seen: list[Event] = []
        with pytest.raises(ConnectError, match=f"cannot connect to ws://127.0.0.1:{port}/ws/ops"):
            async for event in s:
                seen.append(event)
        assert any(isinstance(e, Reconnecting) for e in seen)


class RefusingBroker(MemoryBroker):
    """Refuses to store the first two attempts at ``m3`` (as a Redis outage would)."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def publish(self, room: str, user: str, text: str, **kw: Any) -> PublishResult:
        if text == "m3" and self.attempts < 2:
            self.attempts += 1
            raise BrokerError("redis is restarting")
        return await super().publish(room, user, text, **kw)


async def test_a_refused_message_is_re_sent_before_every_later_one() -> None:
    """The resend policy join and send share: after a retryable refusal the stream waits,
    then re-sends from the refused message on, in order, however often it is refused."""
    broker = RefusingBroker()
    async with ChatServer(ServerSettings(port=0), verifier(), broker) as srv:
        async with stream(srv.port, history=0) as s:
            events = aiter(s)
            await until(events, Connected)
            for i in range(8):
                s.add(f"m{i}")
            await s.write()
            deferred: list[Deferred] = []
            acked: list[str] = []
            async with asyncio.timeout(15):
                while len(acked) < 8:
                    event = await anext(events)
                    if isinstance(event, Deferred):
                        deferred.append(event)
                    elif isinstance(event, Acked):
                        acked.append(event.pending.text)
            assert acked == [f"m{i}" for i in range(8)]
            first = [d for d in deferred if d.error.blocked_by is None]
            assert [d.pending.text for d in first] == ["m3", "m3"]  # refused twice, re-sent
            held = [d for d in deferred if d.error.blocked_by is not None]
            assert held and {d.error.blocked_by for d in held} == {first[0].pending.client_id}
            assert {d.pending.text for d in held} <= {f"m{i}" for i in range(4, 8)}
        history = await broker.history("ops", since=None, limit=10)
        assert [m.text for m in history.messages] == [f"m{i}" for i in range(8)]
