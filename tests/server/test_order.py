"""The order gate (chatctl.server.order), write-only connections and the per-user share of
the rate limits: unit, then live."""

from __future__ import annotations

import json
from typing import Any

from chatctl.broker.base import PublishResult
from chatctl.broker.memory import MemoryBroker
from chatctl.errors import BrokerError
from chatctl.protocol import ErrorCode, RateLimit
from chatctl.server import ChatServer, ServerSettings
from chatctl.server.limits import ConnectionSettings, Limits, RateSettings
from chatctl.server.order import GRACE, OrderGate
from support.harden_helpers import http_get
from support.helpers import (
    client,
    make_server,
    make_token,
    recv_json,
    recv_type,
    timed_token,
    verifier,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_open_gate_lets_every_message_through() -> None:
    gate = OrderGate(clock=FakeClock())
    assert gate.blocked("a") is None and gate.blocked(None) is None


def test_after_a_refusal_later_messages_wait_for_the_refused_one() -> None:
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    assert gate.blocked("m5") is None
    assert gate.refuse(gate.seq, "m5", ErrorCode.BROKER_UNAVAILABLE, 1.0) is None
    clock.now += 0.25
    error = gate.blocked("m6")
    assert error is not None
    assert (error.code, error.client_id, error.blocked_by) == (
        ErrorCode.BROKER_UNAVAILABLE,
        "m6",
        "m5",
    )
    assert error.retry_after == 0.75
    assert '"blocked_by":"m5"' in error.frame()
    clock.now += 10  # time alone does not open it: only m5 does
    assert gate.blocked("m7") is not None
    assert gate.blocked(None) is not None
    assert gate.blocked("m5") is None  # m5 is back: handled as usual
    assert gate.blocked("m6") is None


def test_a_refusal_without_client_id_holds_messages_for_its_retry_after() -> None:
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    gate.blocked(None)
    gate.refuse(gate.seq, None, ErrorCode.RATE_LIMITED, 0.5)
    error = gate.blocked("x")
    assert error is not None and error.blocked_by is None and error.code == "rate_limited"
    clock.now += 0.5
    assert gate.blocked(None) is None
    assert gate.blocked("x") is None


def _let_through(gate: OrderGate, *cids: str) -> list[int]:
    """Let ``cids`` through the gate; their places in the connection's order."""
    seqs = []
    for cid in cids:
        assert gate.blocked(cid) is None
        seqs.append(gate.seq)
    return seqs


def test_the_gate_stays_on_the_first_of_the_messages_refused_in_flight() -> None:
    """A failed batch refuses m0, m1, m2 in that order: the gate waits for m0, and m1 and
    m2 are answered as blocked by it (it used to end on m2, and store m2 before m0)."""
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    s0, s1, s2 = _let_through(gate, "m0", "m1", "m2")
    code = ErrorCode.BROKER_UNAVAILABLE
    assert gate.refuse(s0, "m0", code, 1.0, answered=True) is None
    clock.now += 0.5
    for seq, cid in ((s1, "m1"), (s2, "m2")):
        error = gate.refuse(seq, cid, code, 1.0, answered=True)
        assert error is not None
        assert (error.client_id, error.blocked_by, error.retry_after) == (cid, "m0", 0.5)
    assert gate.blocked("m1") is not None
    assert gate.blocked("m0") is None
    # refusals of the first m1 and m2 still on their way after m0 came back: not a new
    # episode (the client re-sends them after m0 anyway)
    late = gate.refuse(s1, "m1", code, 1.0, answered=True)
    assert late is not None and late.blocked_by == "m0"
    assert _let_through(gate, "m1", "m2")


def test_an_earlier_message_refused_after_a_later_one_is_waited_for_first() -> None:
    """The rate limit refuses m2 at once, the broker refuses m0 (sent before it) later:
    the gate waits for m0, even when m2 came back in between."""
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    s0, s1, s2 = _let_through(gate, "m0", "m1", "m2")
    assert gate.refuse(s2, "m2", ErrorCode.RATE_LIMITED, 0.01) is None
    assert gate.blocked("m2") is None  # back before the broker answered m0
    assert gate.refuse(s0, "m0", ErrorCode.BROKER_UNAVAILABLE, 1.0, answered=True) is None
    error = gate.refuse(s1, "m1", ErrorCode.BROKER_UNAVAILABLE, 1.0, answered=True)
    assert error is not None and error.blocked_by == "m0"
    error = gate.refuse(gate.seq, "m2", ErrorCode.BROKER_UNAVAILABLE, 1.0, answered=True)
    assert error is not None and error.blocked_by == "m0"
    held = gate.blocked("m1")
    assert held is not None and held.blocked_by == "m0"
    assert _let_through(gate, "m0", "m1", "m2")


def test_blocked_messages_count_as_abuse_only_long_after_the_refusal() -> None:
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    gate.blocked("a")
    gate.refuse(gate.seq, "a", ErrorCode.RATE_LIMITED, 1.0)
    assert not gate.late()
    clock.now += 1.0 + GRACE - 0.01
    assert not gate.late()
    clock.now += 0.02
    assert gate.late()
    gate.blocked("a")
    assert not gate.late()


class Heard:
    """A connection listening to its share of the limits: what it was told."""

    def __init__(self) -> None:
        self.told: list[RateLimit] = []

    def share_changed(self, share: RateLimit) -> None:
        self.told.append(share)


def test_the_user_budget_is_shared_by_the_users_connections() -> None:
    rates = RateSettings(conn_rate=100, conn_burst=50, user_rate=150, user_burst=50)
    limits = Limits(ConnectionSettings(), rates, clock=FakeClock())
    limits.acquire("alice", "r")
    assert limits.advertised("alice") == RateLimit(100, 50)  # alone: the connection limit
    first, second = Heard(), Heard()
    limits.listen("alice", first)
    limits.acquire("alice", "other-room")
    assert first.told == [RateLimit(75, 25)] and limits.advertised("alice") == RateLimit(75, 25)
    limits.listen("alice", second)  # welcomed with the share of 2
    limits.acquire("alice", "r")
    assert first.told[-1] == second.told[-1] == RateLimit(50, 16.666)  # rounded down
    limits.acquire("bob", "r")  # another user changes nothing for alice
    assert len(first.told) == 2
    limits.release("alice", "r")
    assert first.told[-1] == second.told[-1] == RateLimit(75, 25)
    limits.unlisten("alice", second)
    limits.release("alice", "other-room")
    assert first.told[-1] == RateLimit(100, 50)
    assert second.told[-1] == RateLimit(75, 25)  # no longer listening: not told any more
    limits.unlisten("alice", second)  # twice is harmless


def test_no_per_user_limit_means_no_share_and_no_update() -> None:
    rates = RateSettings(conn_rate=100, conn_burst=50, user_rate=0, user_burst=0)
    limits = Limits(ConnectionSettings(), rates, clock=FakeClock())
    limits.acquire("alice", "r")
    heard = Heard()
    limits.listen("alice", heard)
    limits.acquire("alice", "r")
    assert heard.told == [] and limits.advertised("alice") == RateLimit(100, 50)
    unlimited = Limits(ConnectionSettings(), RateSettings(0, 0, 0, 0), clock=FakeClock())
    assert unlimited.advertised("alice") is None


# ------------------------------------------------------------------------------ live


class FlakyBroker(MemoryBroker):
    """A memory broker that fails to store the messages whose text is in ``fail`` once."""

    def __init__(self, fail: set[str]) -> None:
        super().__init__()
        self.fail = fail

    async def publish(self, room: str, user: str, text: str, **kw: Any) -> PublishResult:
        if text in self.fail:
            self.fail.discard(text)
            raise BrokerError("redis is restarting")
        return await super().publish(room, user, text, **kw)


async def test_after_broker_unavailable_later_messages_wait_for_the_refused_one() -> None:
    broker = FlakyBroker({"m3"})
    async with ChatServer(ServerSettings(port=0), verifier(), broker) as srv:
        async with client(srv.port, "ops", "alice", receive=0) as ws:
            await recv_type(ws, "welcome")
            for i in range(8):
                await ws.send(json.dumps({"message": f"m{i}", "client_id": f"c{i}"}))
            answers = [await recv_json(ws) for _ in range(8)]
            assert [a["type"] for a in answers] == ["ack"] * 3 + ["error"] * 5
            first, *held = answers[3:]
            assert first["code"] == "broker_unavailable" and "blocked_by" not in first
            assert all(h["blocked_by"] == "c3" and h["code"] == first["code"] for h in held)
            await ws.send(json.dumps({"type": "ping", "data": 1}))  # other frames go on
            assert (await recv_json(ws))["type"] == "pong"
            for i in range(3, 8):
                await ws.send(json.dumps({"message": f"m{i}", "client_id": f"c{i}"}))
            acks = [await recv_type(ws, "ack") for _ in range(5)]
            assert [a["client_id"] for a in acks] == [f"c{i}" for i in range(3, 8)]
        history = await broker.history("ops", since=None, limit=10)
        assert [m.text for m in history.messages] == [f"m{i}" for i in range(8)]


async def test_a_refresh_is_answered_while_messages_are_held_back() -> None:
    """The gate holds messages only: a connection waiting on a refused message can still
    renew its token (else it would be closed with 4001 behind its own held-back queue)."""
    broker = FlakyBroker({"m1"})
    async with ChatServer(ServerSettings(port=0), verifier(), broker) as srv:
        async with client(srv.port, "ops", "alice", receive=0) as ws:
            await recv_type(ws, "welcome")
            await ws.send(json.dumps({"message": "m1", "client_id": "c1"}))
            refused = await recv_json(ws)
            assert refused["code"] == "broker_unavailable" and refused["client_id"] == "c1"
            fresh = timed_token("alice", 3600)
            await ws.send(json.dumps({"type": "refresh", "token": fresh}))
            assert (await recv_json(ws))["type"] == "refreshed"
            await ws.send(json.dumps({"message": "m2", "client_id": "c2"}))
            held = await recv_json(ws)
            assert (held["code"], held["blocked_by"]) == ("broker_unavailable", "c1")
            for i in (1, 2):
                await ws.send(json.dumps({"message": f"m{i}", "client_id": f"c{i}"}))
            acks = [await recv_type(ws, "ack") for _ in range(2)]
            assert [a["client_id"] for a in acks] == ["c1", "c2"]
        assert srv.metrics.counters.token_refreshes == 1


async def test_a_write_only_connection_gets_its_acks_but_not_the_room() -> None:
    srv = make_server()
    async with srv, client(srv.port, "ops", "bob") as reader:
        await recv_type(reader, "welcome")
        async with client(srv.port, "ops", "alice", receive=0, presence=0) as writer:
            welcome = await recv_type(writer, "welcome")
            assert welcome["users"] == ["bob"]
            async with client(srv.port, "ops", "carol"):  # a presence join alice must not see
                await recv_type(reader, "presence")
            await writer.send(json.dumps({"message": "from alice", "client_id": "a1"}))
            await writer.send(json.dumps({"type": "who"}))
            frames = [await recv_json(writer) for _ in range(2)]
            assert [f["type"] for f in frames] == ["ack", "who"]
            await writer.send(json.dumps({"message": "", "client_id": "a2"}))
            assert (await recv_json(writer))["code"] == "invalid_field"
            # the room's traffic went to bob, none of it to alice
            assert (await recv_type(reader, "message"))["message"] == "from alice"
            await writer.send(json.dumps({"type": "ping", "data": "last"}))
            assert await recv_json(writer) == {"type": "pong", "data": "last"}
    assert srv.hub.connections == 0


async def test_receive_must_be_0_or_1() -> None:
    srv = make_server()
    async with srv:
        auth = {"Authorization": f"Bearer {make_token('a')}"}
        status, _, body = await http_get(srv.port, "/ws/ops?receive=no", headers=auth)
    assert status == 400 and b"receive must be 0 or 1" in body


async def test_a_users_connections_are_told_their_share_of_the_user_limit() -> None:
    rates = RateSettings(conn_rate=100, conn_burst=100, user_rate=60, user_burst=30)
    srv = make_server(rates=rates)
    async with srv, client(srv.port, "a", "alice") as first:
        assert (await recv_type(first, "welcome"))["limits"] == {"rate": 60, "burst": 30}
        async with client(srv.port, "b", "alice", receive=0) as second:
            assert (await recv_type(second, "welcome"))["limits"] == {"rate": 30, "burst": 15}
            assert await recv_type(first, "limits") == {"type": "limits", "rate": 30, "burst": 15}
            async with client(srv.port, "a", "bob") as other:  # another user: no change
                assert (await recv_type(other, "welcome"))["limits"]["rate"] == 60
        assert await recv_type(first, "limits") == {"type": "limits", "rate": 60, "burst": 30}
