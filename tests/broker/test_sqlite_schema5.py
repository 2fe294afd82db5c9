"""Schema 5 of the SQLite broker: a publish writes its message row and nothing else. The
row is the de-duplication record, the room's counter is derived from its newest row (and
written to the room's row before a delete may take that), the history is trimmed by the
sweep. Real files, real brokers restarted on them; the clock is the broker's own."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from chatctl.broker.sqlite import SQLiteBroker, store
from chatctl.broker.sqlite.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def _count(broker: SQLiteBroker, table: str) -> int:
    n: int = await broker.run(lambda db: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return n


async def _sweep(broker: SQLiteBroker) -> None:
    while await broker.sweep():
        pass


def _schema_4_file(path: Path, now: float) -> None:
    """A file as chatctl with schema 4 leaves it: room "room" at id 10, messages 6-10 kept
    (history 5), a dedup record for each of them and for 3 (trimmed, still in the window),
    and one for 1, out of the window."""
    with sqlite3.connect(path) as db:
        for v in range(1, 5):
            MIGRATIONS[v](db)
        db.execute("INSERT INTO rooms VALUES (1, 'room', 'e4', 10, ?)", (now,))
        db.executemany(
            "INSERT INTO messages VALUES (1, ?, 'alice', ?, ?, 'text', ?, NULL, NULL, 0)",
            ((i, f"m{i}", now - 10 + i, f"c{i}") for i in range(6, 11)),
        )
        db.executemany(
            "INSERT INTO dedup VALUES (1, 'alice', ?, ?, ?, ?)",
            ((f"c{i}", i, now - 10 + i, now - 10 + i) for i in (3, *range(6, 11))),
        )
        db.execute("INSERT INTO dedup VALUES (1, 'alice', 'c1', 1, ?, ?)", (now - 900, now - 900))
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 4")


async def test_a_schema_4_file_is_migrated_and_its_dedup_records_honoured(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chatctl.db"
    _schema_4_file(path, time.time())
    for _restart in range(2):  # just migrated, then as a schema-5 file
        broker = SQLiteBroker(tmp_path, history_size=5)
        await broker.start()
        try:
            kept = await broker.history("room", since=None, limit=10)
            assert [m.id for m in kept.messages] == [6, 7, 8, 9, 10] and kept.epoch == "e4"
            trimmed = await broker.publish("room", "alice", "m3", client_id="c3")
            assert trimmed.duplicate and trimmed.message.id == 3
            stored = await broker.publish("room", "alice", "m9", client_id="c9")
            assert stored.duplicate and stored.message.id == 9 and stored.message.text == "m9"
            # the records left are those whose message is gone (3, and 1 until the sweep)
            left = await broker.run(
                lambda db: db.execute("SELECT client_id FROM dedup ORDER BY id").fetchall()
            )
            assert left in ([("c1",), ("c3",)], [("c3",)])
        finally:
            await broker.close()
    broker = SQLiteBroker(tmp_path, history_size=5)
    await broker.start()
    try:
        new = await broker.publish("room", "alice", "new", client_id="c1")  # out of the window
        assert not new.duplicate and new.message.id == 11
    finally:
        await broker.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        indexes = db.execute("SELECT name FROM sqlite_schema WHERE type = 'index'").fetchall()
        assert ("messages_ts",) not in indexes  # retention walks the rooms by id


async def test_a_failed_migration_leaves_the_schema_4_file_as_it_was(tmp_path: Path) -> None:
    """The migration is one transaction: a file it cannot finish stays a schema-4 file."""
    path = tmp_path / "chatctl.db"
    _schema_4_file(path, time.time())
    with sqlite3.connect(path) as db:  # a trigger that fails the migration's DELETE
        db.execute(
            "CREATE TRIGGER no_delete BEFORE DELETE ON dedup BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    broker = SQLiteBroker(tmp_path)
    try:
        await broker.start()
        raise AssertionError("the broker started on a file it could not migrate")
    except Exception as exc:  # ConfigError
        assert "no" in str(exc)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM dedup").fetchone()[0] == 7


async def test_a_trimmed_message_within_the_window_is_still_a_duplicate_after_restart(
    tmp_path: Path,
) -> None:
    clock = Clock()
    broker = SQLiteBroker(tmp_path, history_size=2, dedup_window=600, clock=clock)
    await broker.start()
    try:
        for i in range(1, 8):
            await broker.publish("room", "alice", f"m{i}", client_id=f"c{i}")
        await _sweep(broker)
        assert await _count(broker, "messages") == 7  # kept: the window's records
        assert await _count(broker, "dedup") == 0
    finally:
        await broker.close()

    broker = SQLiteBroker(tmp_path, history_size=2, dedup_window=600, clock=clock)
    await broker.start()
    try:
        kept = await broker.history("room", since=None, limit=10)
        assert [m.id for m in kept.messages] == [6, 7]  # the history is what --history says
        again = await broker.publish("room", "alice", "m1", client_id="c1")
        assert again.duplicate and again.message.id == 1
        clock.now += 601  # out of the window: the sweep trims to the history
        await broker.publish("room", "alice", "m8", client_id="c8")
        await _sweep(broker)
        ids = await broker.run(lambda db: db.execute("SELECT id FROM messages").fetchall())
        assert ids == [(7,), (8,)]
        fresh = await broker.publish("room", "alice", "m1 again", client_id="c1")
        assert not fresh.duplicate and fresh.message.id == 9
    finally:
        await broker.close()


async def test_ids_never_go_back_after_retention_deletes_every_message(tmp_path: Path) -> None:
    """The newest messages deleted by retention, the room kept (in use): the counter is in
    the room's row before they go, and ids continue after a restart."""
    clock = Clock()
    broker = SQLiteBroker(tmp_path, history_ttl=60, dedup_window=600, clock=clock)
    await broker.start()
    try:
        await broker.join("room", "bob", "conn1")  # keeps the room from being forgotten
        for i in range(1, 6):
            await broker.publish("room", "alice", f"m{i}", client_id=f"c{i}")
        epoch = (await broker.history("room", since=None, limit=10)).epoch
        clock.now += 61
        await _sweep(broker)
        assert await _count(broker, "messages") == 0
        # still in the window: their records moved to the dedup table
        assert await _count(broker, "dedup") == 5
        assert await broker.run(lambda db: db.execute("SELECT last_id FROM rooms").fetchone()) == (
            5,
        )
    finally:
        await broker.close()

    broker = SQLiteBroker(tmp_path, history_ttl=60, dedup_window=600, clock=clock)
    await broker.start()
    try:
        assert await broker.last_id("room") == 5
        again = await broker.publish("room", "alice", "m5", client_id="c5")
        assert again.duplicate and again.message.id == 5
        new = await broker.publish("room", "alice", "m6")
        assert new.message.id == 6
        assert (await broker.history("room", since=None, limit=10)).epoch == epoch
    finally:
        await broker.close()


async def test_the_counter_is_the_newest_row_when_the_rooms_row_is_behind(tmp_path: Path) -> None:
    """A publish does not update the room's row: after a crash it may say 0 while the
    messages go to 1,000; the room comes back at 1,000, and a trim never takes its newest
    row (so never its counter)."""
    broker = SQLiteBroker(tmp_path, history_size=3, dedup_window=0)
    await broker.start()
    try:
        for i in range(1, 1001):
            broker.publish_nowait("room", "alice", f"m{i}", done=lambda result, error: None)
        await broker.publish("room", "alice", "m1001")
        assert await broker.run(lambda db: db.execute("SELECT last_id FROM rooms").fetchone()) == (
            0,
        )
        await _sweep(broker)
        assert await _count(broker, "messages") == 3
    finally:
        await broker.close()
    broker = SQLiteBroker(tmp_path, history_size=3)
    await broker.start()
    try:
        assert await broker.last_id("room") == 1001
        assert (await broker.publish("room", "alice", "next")).message.id == 1002
    finally:
        await broker.close()


async def test_retention_walks_every_room_in_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an index on ts the sweep walks the rooms (3 a sweep here) and deletes a room's
    expired messages (4 a sweep here) up to its first fresh one: over the sweeps, every
    expired message of every room, and none of the fresh ones."""
    monkeypatch.setattr(store, "EXPIRE_ROUND", 3)
    monkeypatch.setattr(store, "SWEEP_CHUNK", 4)
    clock = Clock()
    broker = SQLiteBroker(tmp_path, history_ttl=60, dedup_window=10, clock=clock)
    await broker.start()
    try:
        for r in range(8):
            await broker.join(f"room{r}", "bob", "conn1")  # kept in memory: not forgotten
            for i in range(r):
                await broker.publish(f"room{r}", "alice", f"old {i}")
        clock.now += 61
        for r in range(0, 8, 2):
            await broker.publish(f"room{r}", "alice", "fresh")
        rounds = 0
        while await broker.sweep():
            rounds += 1
        assert rounds >= 3  # 8 rooms, 3 a sweep; 7 expired messages in room 7, 4 a sweep
        rows = await broker.run(
            lambda db: db.execute(
                "SELECT name, id, text FROM messages JOIN rooms USING (rid) ORDER BY name"
            ).fetchall()
        )
        assert rows == [(f"room{r}", r + 1, "fresh") for r in range(0, 8, 2)]
        for r in range(8):
            assert await broker.last_id(f"room{r}") == r + (r % 2 == 0)
    finally:
        await broker.close()
    broker = SQLiteBroker(tmp_path, history_ttl=60, clock=clock)
    await broker.start()
    try:
        for r in range(8):  # the rooms whose every message expired kept their counters
            assert (await broker.publish(f"room{r}", "alice", "new")).message.id == r + 1 + (
                r % 2 == 0
            )
    finally:
        await broker.close()
