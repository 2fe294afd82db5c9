"""A connection's membership of its room: counted refusals when the broker cannot take it,
everything undone at the end, and broker events of a type this server does not know."""

from __future__ import annotations

import json
from dataclasses import dataclass

from chatctl.broker.base import Deliver
from chatctl.broker.memory import MemoryBroker
from chatctl.errors import BrokerUnavailable
from chatctl.server import ChatServer, ServerSettings
from support.harden_helpers import http_get, refused
from support.helpers import client, recv_json, recv_presence, recv_type, verifier
from support.metrics import samples


class SubscribeDown(MemoryBroker):
    """A memory broker whose live subscriptions fail, as a broker that lost its store does."""

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        raise BrokerUnavailable("store unreachable")


class Tapped(MemoryBroker):
    """A memory broker that lets the test deliver events to the server's subscription."""

    def __init__(self) -> None:
        super().__init__()
        self.delivers: dict[str, Deliver] = {}

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        self.delivers[room] = deliver
        await super().subscribe(room, deliver)


@dataclass(frozen=True)
class Typing:
    """An event type a newer broker might deliver."""

    room: str
    user: str


async def test_a_503_while_the_broker_is_down_shows_in_metrics() -> None:
    srv = ChatServer(ServerSettings(port=0), verifier(), SubscribeDown())
    async with srv:
        status, body = await refused(srv.port, "lobby", "alice")
        assert status == 503 and "broker unavailable" in body
        _, _, text = await http_get(srv.port, "/metrics")
        m = samples(text.decode())
        rejection = (("reason", "broker_unavailable"), ("status", "503"))
        assert m["chatctl_handshake_rejections_total", rejection] == 1
        assert srv.metrics.counters.rejected(503) == 1
        # and the refused connection holds no slot
        assert srv.limits.total == 0 and not srv._members


async def test_unknown_broker_events_are_ignored_and_the_room_goes_on() -> None:
    broker = Tapped()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        broker.delivers["lobby"](Typing("lobby", "bob"))  # type: ignore[arg-type]
        await ws.send(json.dumps({"message": "still here", "client_id": "c1"}))
        # nothing was written for the unknown event, and the room still delivers
        msg, ack = await recv_json(ws), await recv_json(ws)
        assert (msg["type"], msg["message"]) == ("message", "still here")
        assert (ack["type"], ack["client_id"]) == ("ack", "c1")


async def test_the_end_of_a_connection_undoes_its_membership() -> None:
    broker = MemoryBroker()
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv, client(srv.port, "lobby", "carol") as carol:
        await recv_type(carol, "welcome")
        async with client(srv.port, "lobby", "alice") as a, client(srv.port, "lobby", "bob") as b:
            await recv_type(a, "welcome")
            await recv_type(b, "welcome")
            # the hub's readers: the 3 connections and the node's listener of the dm notices
            assert srv.limits.total == 3 and srv.hub.connections == 3 + 1
            joined: set[str] = set()  # (a visit within one presence tick would go unheard)
            while len(joined) < 2:
                joined.update(u for u, event in await recv_presence(carol) if event == "join")
        # the leave is announced last, after the slot and the hub were given back
        left: set[str] = set()
        while len(left) < 2:
            left.update(u for u, event in await recv_presence(carol) if event == "leave")
        assert left == {"alice", "bob"}
        assert srv.limits.total == 1 and srv.hub.connections == 1 + 1 and not srv._members
        assert await broker.users("lobby") == ["carol"]
