"""Retention (``history_ttl``) on every broker: old messages leave the history, idle rooms
are forgotten (memory freed, rows deleted, keys expired), and a forgotten room that comes back
starts a new epoch."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from chatctl.broker.memory import MemoryBroker
from chatctl.broker.redis.broker import RedisBroker
from chatctl.broker.sqlite import SQLiteBroker
from chatctl.broker.sqlite import cache as sqlite_cache
from chatctl.server import ChatServer, ServerSettings
from support.harden_helpers import http_get
from support.helpers import RedisServer, verifier


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_broker_forgets_idle_rooms_and_old_messages() -> None:
    clock = Clock()
    broker = MemoryBroker(history_ttl=60, clock=clock)
    await broker.start()
    try:
        for i in range(100):
            await broker.publish(f"room{i}", "alice", "hello", client_id=f"c{i}")
        old = await broker.history("room0", since=None, limit=10)
        await broker.join("busy", "bob", "conn1")
        await broker.publish("busy", "bob", "old news")
        assert broker.rooms == 101

        clock.now += 61
        await broker.publish("busy", "bob", "fresh")
        broker.sweep()

        assert broker.rooms == 1  # only the room with a member is left
        busy = await broker.history("busy", since=None, limit=10)
        assert [m.text for m in busy.messages] == ["fresh"]
        assert busy.last_id == 2
        resumed = await broker.history("busy", since=0, limit=10)
        assert not resumed.complete  # message 1 is gone: not a full recovery

        back = await broker.publish("room0", "alice", "again", client_id="c0")
        assert not back.duplicate and back.message.id == 1
        assert (await broker.history("room0", since=None, limit=10)).epoch != old.epoch
    finally:
        await broker.close()


async def test_memory_broker_sweeps_on_a_timer() -> None:
    broker = MemoryBroker(history_ttl=0.3)
    await broker.start()
    try:
        for i in range(50):
            await broker.publish(f"r{i}", "alice", "hi")
        assert broker.rooms == 50
        async with asyncio.timeout(5):
            while broker.rooms:  # noqa: ASYNC110 - the sweep is a timer, not an event
                await asyncio.sleep(0.05)
    finally:
        await broker.close()


async def test_memory_broker_without_ttl_keeps_everything() -> None:
    clock = Clock()
    broker = MemoryBroker(history_ttl=0, clock=clock)
    await broker.start()
    try:
        await broker.publish("r", "alice", "hi")
        clock.now += 10 * 365 * 86400
        broker.sweep()
        assert [m.text for m in (await broker.history("r", since=None, limit=5)).messages] == ["hi"]
    finally:
        await broker.close()


async def _count(broker: SQLiteBroker, table: str) -> int:
    n: int = await broker.run(lambda db: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return n


async def test_sqlite_broker_deletes_idle_rooms_and_old_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_cache, "STALE_GRACE", 0.0)
    clock = Clock()
    broker = SQLiteBroker(tmp_path, history_ttl=60, clock=clock)
    await broker.start()
    try:
        for i in range(200):
            await broker.publish(f"room{i}", "alice", "hello", client_id=f"c{i}")
        old = await broker.history("room0", since=None, limit=10)
        await broker.join("busy", "bob", "conn1")
        await broker.publish("busy", "bob", "old news")
        assert await _count(broker, "rooms") == 201
        assert await _count(broker, "messages") == 201

        clock.now += 61
        await broker.publish("busy", "bob", "fresh")
        while await broker.sweep():
            pass

        assert await _count(broker, "rooms") == 1
        assert await _count(broker, "messages") == 1
        assert broker.rooms == 1
        busy = await broker.history("busy", since=None, limit=10)
        assert [m.text for m in busy.messages] == ["fresh"] and busy.last_id == 2

        back = await broker.publish("room0", "alice", "again", client_id="c0")
        assert not back.duplicate and back.message.id == 1
        assert (await broker.history("room0", since=None, limit=10)).epoch != old.epoch
    finally:
        await broker.close()


async def test_sqlite_file_stops_growing_under_room_churn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rooms come and go past the TTL: freed pages are reused or given back, so the file
    stays about the size one generation of rooms needs."""
    monkeypatch.setattr(sqlite_cache, "STALE_GRACE", 0.0)
    clock = Clock()
    broker = SQLiteBroker(tmp_path, history_ttl=10, clock=clock)
    await broker.start()
    sizes = []
    try:
        for generation in range(4):
            await asyncio.gather(
                *(broker.publish(f"g{generation}-{i}", "alice", "x" * 200) for i in range(2000))
            )
            clock.now += 11
            while await broker.sweep():
                pass
            pages = await broker.run(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
            sizes.append(pages)
        assert await _count(broker, "rooms") == 0
    finally:
        await broker.close()
    assert sizes[-1] <= sizes[0] * 1.2, sizes


@pytest.fixture
def redis() -> object:
    server = RedisServer().start()
    yield server
    server.cleanup()


async def test_redis_keys_expire_and_the_room_comes_back_with_a_new_epoch(
    redis: RedisServer,
) -> None:
    broker = RedisBroker(redis.url, history_ttl=1.0, prefix="ret")
    await broker.start()
    r = redis.client()
    try:
        start = r.dbsize()
        old = await broker.history("quiet", since=None, limit=10)
        for i in range(20):
            await broker.publish(f"room{i}", "alice", "hello", client_id=f"c{i}")
        await broker.publish("quiet", "alice", "hello")
        assert r.dbsize() > start + 20
        assert 0 < r.pttl("ret:{quiet}:meta") <= 1000
        assert 0 < r.pttl("ret:{quiet}:log") <= 1000

        deadline = time.monotonic() + 10
        # Redis expires every key by itself, the dedup keys too (not longer than their room)
        while r.dbsize() > start and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert r.dbsize() == start
        assert not r.exists("ret:{quiet}:meta", "ret:{quiet}:log", "ret:{room0}:log")

        again = await broker.publish("quiet", "alice", "back")
        assert again.message.id == 1
        new = await broker.history("quiet", since=None, limit=10)
        assert new.epoch != old.epoch and [m.text for m in new.messages] == ["back"]
    finally:
        r.close()
        await broker.close()


async def test_redis_history_leaves_out_messages_older_than_the_ttl(redis: RedisServer) -> None:
    broker = RedisBroker(redis.url, history_ttl=1.0, prefix="old", presence_ttl=0.4)
    await broker.start()
    try:
        await broker.join("room", "bob", "conn1")  # a member keeps the room alive
        await broker.publish("room", "alice", "old 1")
        await broker.publish("room", "alice", "old 2")
        await asyncio.sleep(1.3)
        await broker.publish("room", "alice", "new")
        h = await broker.history("room", since=None, limit=10)
        assert [m.text for m in h.messages] == ["new"] and h.last_id == 3
        assert not (await broker.history("room", since=0, limit=10)).complete
        assert (await broker.history("room", since=2, limit=10)).complete
    finally:
        await broker.close()


async def test_redis_room_with_members_does_not_expire(redis: RedisServer) -> None:
    broker = RedisBroker(redis.url, history_ttl=0.6, prefix="kept", presence_ttl=0.4)
    await broker.start()
    r = redis.client()
    try:
        await broker.join("room", "bob", "conn1")
        await broker.publish("room", "alice", "hi")
        first = await broker.history("room", since=None, limit=10)
        await asyncio.sleep(1.5)  # 2.5 TTLs; the heartbeat (every 0.1 s) refreshes the keys
        assert r.exists("kept:{room}:meta")
        assert (await broker.history("room", since=None, limit=10)).epoch == first.epoch
    finally:
        r.close()
        await broker.close()


async def test_metrics_show_the_rooms_held_in_memory() -> None:
    clock = Clock()
    broker = MemoryBroker(history_ttl=60, clock=clock)
    async with ChatServer(ServerSettings(port=0), verifier(), broker) as srv:
        for i in range(3):
            await broker.publish(f"r{i}", "alice", "hi")
        _, _, body = await http_get(srv.port, "/metrics")
        assert "chatctl_broker_rooms 3.0" in body.decode()
        clock.now += 61
        broker.sweep()
        _, _, body = await http_get(srv.port, "/metrics")
        assert "chatctl_broker_rooms 0.0" in body.decode()
