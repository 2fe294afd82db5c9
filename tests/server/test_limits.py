"""Rate limits (token buckets) and connection/room limits, unit and live."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.exceptions import ConnectionClosed

from chatctl.server.limits import (
    ConnectionSettings,
    FrameLimiter,
    Limits,
    RateSettings,
    TokenBucket,
    Verdict,
)
from support.harden_helpers import http_get, refused
from support.helpers import client, make_server, make_token, recv_json, recv_type, timed_token


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------------------ unit


def test_bucket_grants_burst_then_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 5, clock=clock)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() == pytest.approx(0.1)
    clock.now += 0.1
    assert bucket.take() == 0.0
    clock.now += 100  # never more than the burst saved up
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() > 0


def test_zero_rate_is_unlimited() -> None:
    bucket = TokenBucket(0, 1, clock=FakeClock())
    assert all(bucket.take() == 0.0 for _ in range(10_000))


def test_limiter_refuses_then_closes_sustained_abuse() -> None:
    clock = FakeClock()
    rates = RateSettings(conn_rate=1, conn_burst=2, user_rate=100, user_burst=100)
    rates = RateSettings(**{**rates.__dict__, "abuse_burst": 3, "abuse_rate": 1})
    limiter = Limits(ConnectionSettings(), rates, clock=clock).frame_limiter("alice")
    verdicts = [limiter.check()[0] for _ in range(6)]
    assert verdicts == [Verdict.ALLOW] * 2 + [Verdict.REFUSE] * 3 + [Verdict.CLOSE]


def test_user_bucket_is_shared_and_refunds_the_connection() -> None:
    clock = FakeClock()
    rates = RateSettings(conn_rate=10, conn_burst=10, user_rate=1, user_burst=3)
    limits = Limits(ConnectionSettings(), rates, clock=clock)
    limits.acquire("alice", "r")
    limits.acquire("alice", "r")
    a, b = limits.frame_limiter("alice"), limits.frame_limiter("alice")
    assert isinstance(a, FrameLimiter) and a.user is b.user
    assert [a.check()[0], b.check()[0], a.check()[0]] == [Verdict.ALLOW] * 3
    assert b.check()[0] == Verdict.REFUSE
    assert b.conn.take() == 0.0  # the refused frame did not cost b its own token


def test_connection_and_room_limits() -> None:
    limits = Limits(
        ConnectionSettings(
            max_connections=3, max_user_connections=2, max_rooms=2, max_user_rooms=1
        ),
        RateSettings(),
    )
    assert limits.refusal("alice", "a") is None
    limits.acquire("alice", "a")
    refusal = limits.refusal("alice", "b")
    assert refusal is not None and refusal[1] == "user_rooms" and refusal[0] == 429
    limits.acquire("alice", "a")
    refusal = limits.refusal("alice", "a")
    assert refusal is not None and refusal[1] == "user_connections"
    limits.acquire("bob", "b")
    refusal = limits.refusal("carol", "c")
    assert refusal is not None and refusal[1] == "node_connections" and refusal[0] == 503
    limits.release("alice", "a")
    refusal = limits.refusal("carol", "c")
    assert refusal is not None and refusal[1] == "node_rooms"
    assert limits.refusal("carol", "b") is None
    for user, room in [("alice", "a"), ("bob", "b")]:
        limits.release(user, room)
    assert limits.total == 0 and not limits._users and not limits._rooms


# ------------------------------------------------------------------------------ live


async def test_over_the_rate_gets_rate_limited_with_retry_after_never_a_silent_drop() -> None:
    """Every frame is answered; after the first refusal the later messages are held back
    (``blocked_by``) so that, re-sent in order, the room stores them in the order sent."""
    srv = make_server(rates=RateSettings(conn_rate=5, conn_burst=5, abuse_burst=1000))
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        for i in range(20):
            await ws.send(json.dumps({"type": "message", "message": f"m{i}", "client_id": f"c{i}"}))
        acked: list[str] = []
        limited: dict[str, dict[str, object]] = {}
        while len(acked) + len(limited) < 20:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if frame["type"] == "ack":
                acked.append(frame["client_id"])
            elif frame["type"] == "error":
                assert frame["code"] == "rate_limited"
                limited[frame["client_id"]] = frame
        assert len(acked) >= 5 and len(limited) >= 10  # every frame answered, one way or other
        assert acked == [f"c{i}" for i in range(len(acked))]  # a prefix, in order
        first, *rest = limited.values()
        assert first["client_id"] == f"c{len(acked)}" and "blocked_by" not in first
        assert all(e["blocked_by"] == first["client_id"] for e in rest)
        retry_after = first["retry_after"]
        assert isinstance(retry_after, float) and 0 < retry_after <= 1
        # the protocol's rule: wait retry_after, re-send from the refused one on, in order
        errors = len(limited)
        todo = [(cid, f"m{cid[1:]}") for cid in limited] + [("late", "again")]
        while todo:
            await asyncio.sleep(retry_after)
            for cid, text in todo:
                await ws.send(json.dumps({"message": text, "client_id": cid}))
            answered = 0
            while answered < len(todo):
                frame = await recv_json(ws)
                if frame["type"] == "ack":
                    acked.append(frame["client_id"])
                elif frame["type"] == "error":
                    errors += 1
                    if "blocked_by" not in frame:
                        retry_after = frame["retry_after"]
                else:
                    continue
                answered += 1
            todo = [(cid, text) for cid, text in todo if cid not in acked]
        assert acked == [f"c{i}" for i in range(20)] + ["late"]
    history = await srv.broker.history("lobby", since=None, limit=100)
    assert [m.text for m in history.messages] == [f"m{i}" for i in range(20)] + ["again"]
    assert srv.metrics.counters.errors["rate_limited"] == errors


async def test_a_refresh_counts_against_the_frame_rate() -> None:
    """A refresh takes a token like any frame: over the rate it is refused (not verified),
    and accepted once the client waited retry_after."""
    srv = make_server(rates=RateSettings(conn_rate=2, conn_burst=1, abuse_burst=1000))
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"type": "ping", "data": 1}))
        refresh = json.dumps({"type": "refresh", "token": timed_token("alice", 3600)})
        await ws.send(refresh)
        assert (await recv_json(ws))["type"] == "pong"
        error = await recv_json(ws)
        assert error["code"] == "rate_limited" and "client_id" not in error
        assert srv.metrics.counters.token_refreshes == 0
        await asyncio.sleep(error["retry_after"])
        await ws.send(refresh)
        assert (await recv_json(ws))["type"] == "refreshed"
        assert srv.metrics.counters.token_refreshes == 1


async def test_sustained_abuse_closes_with_1008() -> None:
    rates = RateSettings(conn_rate=2, conn_burst=2, abuse_burst=10, abuse_rate=1)
    srv = make_server(rates=rates)
    async with srv, client(srv.port, "lobby", "mallory") as ws:
        await recv_type(ws, "welcome")
        with pytest.raises(ConnectionClosed) as info:
            for i in range(200):
                await ws.send(json.dumps({"message": f"spam {i}"}))
                await asyncio.sleep(0)
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert srv.metrics.counters.policy_closes == 1


async def test_user_rate_is_shared_by_the_users_connections() -> None:
    rates = RateSettings(conn_rate=100, conn_burst=100, user_rate=1, user_burst=4)
    srv = make_server(rates=rates)
    async with srv, client(srv.port, "a", "alice") as a, client(srv.port, "a", "alice") as b:
        await recv_type(a, "welcome")
        await recv_type(b, "welcome")
        for i in range(3):
            await a.send(json.dumps({"message": "x", "client_id": f"a{i}"}))
            await recv_type(a, "ack")
        await b.send(json.dumps({"message": "x", "client_id": "b0"}))
        await recv_type(b, "ack")
        await b.send(json.dumps({"message": "x", "client_id": "b1"}))
        error = await recv_type(b, "error")
        assert error["code"] == "rate_limited" and error["client_id"] == "b1"


async def test_connections_per_user_get_429_and_are_released() -> None:
    srv = make_server(limits=ConnectionSettings(max_user_connections=2))
    async with srv:
        async with client(srv.port, "r", "alice") as a, client(srv.port, "r", "alice"):
            await recv_type(a, "welcome")
            status, body = await refused(srv.port, "r", "alice")
            assert status == 429 and "too many connections" in body
            async with client(srv.port, "r", "bob") as b:  # other users are unaffected
                await recv_type(b, "welcome")
        await asyncio.sleep(0.1)
        async with client(srv.port, "r", "alice") as a:  # slots come back on disconnect
            await recv_type(a, "welcome")
    assert srv.metrics.counters.rejections["user_connections", 429] == 1


async def test_connections_in_total_get_503_with_retry_after() -> None:
    srv = make_server(limits=ConnectionSettings(max_connections=2))
    async with srv, client(srv.port, "r", "alice"), client(srv.port, "r", "bob"):
        status, body = await refused(srv.port, "r", "carol")
        assert status == 503 and "try another node" in body
        # the refusal carries Retry-After and a plain body
        _, headers, _ = await http_get(
            srv.port,
            "/ws/r",
            headers={
                "Authorization": "Bearer " + make_token("dave"),
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
        assert headers["retry-after"] == "5"
        assert headers["content-type"].startswith("text/plain")


async def test_rooms_per_user_get_429() -> None:
    srv = make_server(limits=ConnectionSettings(max_user_rooms=2))
    async with srv, client(srv.port, "r1", "alice"), client(srv.port, "r2", "alice"):
        status, body = await refused(srv.port, "r3", "alice")
        assert status == 429 and "too many rooms" in body
        async with client(srv.port, "r2", "alice") as again:  # a room it is in already: fine
            await recv_type(again, "welcome")


async def test_rooms_per_node_get_503() -> None:
    srv = make_server(limits=ConnectionSettings(max_rooms=1))
    async with srv, client(srv.port, "r1", "alice"):
        status, _ = await refused(srv.port, "r2", "bob")
        assert status == 503
        async with client(srv.port, "r1", "bob") as ws:
            await recv_type(ws, "welcome")


async def test_every_way_a_connection_ends_gives_its_slot_back() -> None:
    """A leaked slot would refuse a user forever: count them after every kind of ending."""
    srv = make_server(limits=ConnectionSettings(max_user_connections=3), shutdown_timeout=2.0)
    async with srv:
        port = srv.port
        # normal close, an abrupt TCP abort, a 1009 close, a 1007 close
        async with client(port, "r", "alice") as ws:
            await recv_type(ws, "welcome")
        async with client(port, "r", "alice") as ws:
            await recv_type(ws, "welcome")
            ws.transport.abort()
        for payload in ("x" * 70_000, b"\xff"):
            async with client(port, "r", "alice", max_size=None) as ws:
                await recv_type(ws, "welcome")
                await ws.send(payload, text=True)
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
        # an upgrade request that the handshake refuses after admission (bad key) ...
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                "GET /ws/r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: nope\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {make_token('alice')}\r\n\r\n"
            ).encode()
        )
        assert (await reader.read()).startswith(b"HTTP/1.1 400")
        writer.close()
        # ... and one that goes away right after sending its request
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                "GET /ws/r HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {make_token('alice')}\r\n\r\n"
            ).encode()
        )
        writer.transport.abort()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if srv.limits.total == 0 and not srv._members:
                break
        assert srv.limits.total == 0 and not srv._members
        assert srv.hub.connections == 0
        async with contextlib.AsyncExitStack() as stack:  # all 3 connections, at once
            for _ in range(3):
                ws = await stack.enter_async_context(client(port, "r", "alice"))
                await recv_type(ws, "welcome")


async def test_welcome_history_is_bounded_by_max_pending() -> None:
    """?history=N on a room of long messages must not make a handshake cost megabytes."""
    srv = make_server(max_pending_bytes=64 * 1024)
    async with srv:
        for i in range(100):
            await srv.broker.publish("big", "bob", f"{i} " + "z" * 4000)
        async with client(srv.port, "big", "alice", history=100) as ws:
            raw = await asyncio.wait_for(ws.recv(), 5)
            welcome = json.loads(raw)
            assert isinstance(raw, str)
            assert len(raw.encode()) < 64 * 1024 + 4096
            ids = [m["id"] for m in welcome["history"]]
            assert 0 < len(ids) < 100 and ids[-1] == 100  # the newest ones, in order
            assert ids == list(range(ids[0], 101))
        async with client(srv.port, "big", "alice", since=0) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert welcome["recovered"] is False  # told, never a silent partial recovery
        async with client(srv.port, "big", "alice", since=97) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert welcome["recovered"] is True and len(welcome["history"]) == 3


def test_a_user_cannot_reset_its_rate_limit_by_reconnecting() -> None:
    now = [0.0]
    limits = Limits(
        ConnectionSettings(), RateSettings(user_rate=1, user_burst=3), clock=lambda: now[0]
    )
    limits.acquire("eve", "room")
    bucket = limits.frame_limiter("eve").user
    assert [bucket.take() for _ in range(4)][-1] > 0  # spent
    limits.release("eve", "room")
    limits.acquire("eve", "room")  # reconnect at once: the same, still empty bucket
    assert limits.frame_limiter("eve").user.take() > 0
    limits.release("eve", "room")
    now[0] += 10  # refilled: nothing left to remember
    limits.acquire("eve", "room")
    assert limits.frame_limiter("eve").user.take() == 0
