"""The SQLite broker beyond the conformance suite: what survives a restart, the lock, files
that are not ours, a full disk, and the schema version."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from chatctl.broker import create_broker
from chatctl.broker.base import PublishDone, PublishResult
from chatctl.broker.sqlite import SQLiteBroker
from chatctl.broker.sqlite.dispatch import THREAD_SWITCH_INTERVAL
from chatctl.broker.sqlite.schema import SCHEMA_VERSION, WAL_CATCH_UP_FRAMES
from chatctl.broker.sqlite.writer import CHECKPOINT_COMMITS
from chatctl.errors import BrokerUnavailable, ConfigError, UsageError
from chatctl.server import ChatServer, ServerSettings
from support.harden_helpers import http_get
from support.helpers import client, recv_type, verifier


async def test_ids_epoch_history_and_dedup_survive_a_restart(tmp_path: Path) -> None:
    first = SQLiteBroker(tmp_path, history_size=5)
    await first.start()
    for i in range(7):
        await first.publish("room", "alice", f"m{i}", client_id=f"c{i}")
    before = await first.history("room", since=None, limit=10)
    await first.close()

    second = SQLiteBroker(tmp_path, history_size=5)
    await second.start()
    try:
        after = await second.history("room", since=None, limit=10)
        assert after == before
        assert [m.id for m in after.messages] == [3, 4, 5, 6, 7] and after.epoch == before.epoch
        again = await second.publish("room", "alice", "m6", client_id="c6")
        assert again.duplicate and again.message.id == 7 and again.message.text == "m6"
        new = await second.publish("room", "alice", "next")
        assert new.message.id == 8
        resumed = await second.history("room", since=6, limit=10)
        assert [m.id for m in resumed.messages] == [7, 8] and resumed.complete
    finally:
        await second.close()


async def test_a_burst_is_committed_in_few_transactions(tmp_path: Path) -> None:
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    try:
        await broker.publish("room", "alice", "warm up")
        results = await asyncio.gather(
            *(broker.publish("room", "alice", f"m{i}", client_id=f"c{i}") for i in range(500))
        )
        assert [r.message.id for r in results] == list(range(2, 502))  # call order = id order
        changes = await broker.run(lambda db: db.total_changes)
        # one row per message: no UPDATE of the room's counter, no dedup record (schema 5)
        assert changes == 501 + 3  # + the room's row, and the write check at start
        # written in multi-row INSERTs of 128, 64, …: every row in its place
        rows = await broker.run(
            lambda db: db.execute(
                "SELECT id, user, text, client_id FROM messages ORDER BY id"
            ).fetchall()
        )
        seen = await broker.run(lambda db: db.execute("SELECT count(*) FROM dedup").fetchone())
    finally:
        await broker.close()
    assert rows == [(1, "alice", "warm up", None)] + [
        (i + 2, "alice", f"m{i}", f"c{i}") for i in range(500)
    ]
    assert seen == (0,)  # the message rows are the dedup records


async def test_a_second_broker_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = SQLiteBroker(tmp_path)
    await first.start()
    try:
        with pytest.raises(ConfigError, match="in use by another chatctl serve"):
            await SQLiteBroker(tmp_path / "chatctl.db").start()
    finally:
        await first.close()
    again = SQLiteBroker(tmp_path)  # released on close
    await again.start()
    await again.close()


@pytest.mark.parametrize(
    "content",
    [b"this is a text file, not a database\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "corrupt-header"],
)
async def test_a_file_that_is_not_a_database_is_refused_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "chatctl.db"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="not a chatctl database"):
        await SQLiteBroker(path).start()
    assert path.read_bytes() == content
    assert not (tmp_path / "chatctl.db-wal").exists()


async def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    content = path.read_bytes()
    with pytest.raises(ConfigError, match="another program's SQLite database"):
        await SQLiteBroker(path).start()
    assert path.read_bytes() == content


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    await broker.close()
    with sqlite3.connect(tmp_path / "chatctl.db") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer chatctl"):
        await SQLiteBroker(tmp_path).start()


async def test_a_new_database_gets_the_current_schema_version(tmp_path: Path) -> None:
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    await broker.close()
    with sqlite3.connect(tmp_path / "chatctl.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_schema_1_database_is_upgraded_and_keeps_its_messages(tmp_path: Path) -> None:
    """A file of the chatctl before revocations and display names keeps its rooms and
    messages (read back without a display name) and gains the table and the column."""
    from chatctl.broker.sqlite.schema import APPLICATION_ID, MIGRATIONS

    with sqlite3.connect(tmp_path / "chatctl.db") as db:
        MIGRATIONS[1](db)
        now = time.time()
        db.execute("INSERT INTO rooms VALUES (1, 'room', 'e1', 1, ?)", (now,))
        db.execute("INSERT INTO messages VALUES (1, 1, 'alice', 'old', ?, 'text', NULL)", (now,))
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("PRAGMA user_version = 1")
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    try:
        assert await broker.revocations("") == ("0", [])
        await broker.publish("room", "hooks", "new", display="Grafana")
        found = await broker.history("room", since=None, limit=10)
        assert found.epoch == "e1"
        got = [(m.id, m.text, m.display) for m in found.messages]
        assert got == [(1, "old", None), (2, "new", "Grafana")]
    finally:
        await broker.close()
    with sqlite3.connect(tmp_path / "chatctl.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        # schema 4: the moderation columns (an old message is no tombstone) and sanctions
        assert db.execute("SELECT deleted, moderation FROM messages").fetchall() == [
            (0, None),
            (0, None),
        ]
        assert db.execute("SELECT count(*) FROM sanctions").fetchone() == (0,)


def test_urls() -> None:
    broker = create_broker("sqlite:///var/tmp/x/?synchronous=full")
    assert isinstance(broker, SQLiteBroker)
    assert broker.path == Path("/var/tmp/x/chatctl.db") and broker.synchronous == "full"
    with pytest.raises(UsageError, match="unknown SQLite URL option"):
        create_broker("sqlite:///var/tmp/x.db?sync=1")
    with pytest.raises(UsageError, match="synchronous must be"):
        create_broker("sqlite:///var/tmp/x.db?synchronous=off")


async def _fill_until_refused(ws: object, acked: list[int]) -> dict[str, object]:
    """Send until the server refuses a message; return the refusal."""
    text = "x" * 4000
    for i in range(10_000):
        await ws.send(json.dumps({"message": text, "client_id": f"fill-{i}"}))  # type: ignore[attr-defined]
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[attr-defined]
        while frame["type"] == "message":
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[attr-defined]
        if frame["type"] == "ack":
            acked.append(frame["id"])
            continue
        return frame  # type: ignore[no-any-return]
    raise AssertionError("the database never filled up")


async def test_full_disk_refuses_messages_then_recovers_by_itself(tmp_path: Path) -> None:
    broker = SQLiteBroker(tmp_path)
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    acked: list[int] = []
    async with srv, client(srv.port, "room", "alice") as ws:
        await recv_type(ws, "welcome")
        pages = await broker.run(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
        await broker.run(lambda db: db.execute(f"PRAGMA max_page_count = {pages + 20}"))

        refusal = await _fill_until_refused(ws, acked)
        assert refusal["type"] == "error" and refusal["code"] == "broker_unavailable"
        assert acked, "nothing was acked before the disk filled up"
        assert not broker.healthy()
        status, _, body = await http_get(srv.port, "/healthz")
        assert status == 503 and b"broker unavailable: cannot write the database" in body
        assert b"full" in body  # names the fault (database or disk is full)
        with pytest.raises(BrokerUnavailable):
            await broker.publish("room", "alice", "y" * 8000)

        await broker.run(lambda db: db.execute("PRAGMA max_page_count = 1073741823"))
        async with asyncio.timeout(5):  # the writer probes every second
            while (await http_get(srv.port, "/healthz"))[0] != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        # the refused message goes again first: the node holds later ones back until it
        # comes (docs/protocol.md, "Order")
        refused = str(refusal["client_id"])
        await ws.send(json.dumps({"message": "x" * 4000, "client_id": refused}))
        await ws.send(json.dumps({"message": "after", "client_id": "after"}))
        for cid in (refused, "after"):
            ack = await recv_type(ws, "ack")
            assert ack["client_id"] == cid
            acked.append(ack["id"])

    again = SQLiteBroker(tmp_path)
    await again.start()
    try:
        kept = await again.history("room", since=0, limit=10_000)
        assert [m.id for m in kept.messages] == acked == list(range(1, len(acked) + 1))
        assert kept.messages[-1].text == "after" and kept.complete
    finally:
        await again.close()


def _hold(inside: threading.Event, go: threading.Event) -> Callable[[sqlite3.Connection], None]:
    """An op that keeps the writer inside its transaction until ``go`` is set."""

    def fn(db: sqlite3.Connection) -> None:
        inside.set()
        assert go.wait(10), "never released"

    return fn


async def _release_after_handover(broker: SQLiteBroker, go: threading.Event) -> None:
    """Set ``go`` once the ops the tasks just created have been handed to the writer."""
    await asyncio.sleep(0)  # the new tasks run up to their submit, which schedules the hand-over
    dispatch = broker._dispatch
    assert dispatch is not None and dispatch._outbox, "nothing was submitted"

    def release() -> None:  # after the hand-over: callbacks run in the order they were scheduled
        if not dispatch._outbox:
            go.set()  # else the hold times out and the test fails

    asyncio.get_running_loop().call_soon(release)


async def test_a_failed_transaction_fails_the_publishes_queued_behind_it(tmp_path: Path) -> None:
    """A transient fault fails one transaction; the next one would commit, but it holds a
    publish made before the failure was known: it is refused too, so a connection's later
    message is never stored ahead of its refused one. Then writes work again."""
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    try:
        await broker.publish("room", "alice", "first")
        pages = await broker.run(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
        # room for a small message (and the writer's 16 KiB probe), not for a big one
        await broker.run(lambda db: db.execute(f"PRAGMA max_page_count = {pages + 12}"))
        inside1, go1, inside2, go2 = (threading.Event() for _ in range(4))

        held1 = asyncio.ensure_future(broker.run(_hold(inside1, go1)))
        assert await asyncio.to_thread(inside1.wait, 10)
        # the big publish and the second hold go into one transaction, the hold runs first
        big = asyncio.ensure_future(broker.publish("room", "alice", "x" * 200_000))
        held2 = asyncio.ensure_future(broker.run(_hold(inside2, go2)))
        await _release_after_handover(broker, go1)
        await held1
        assert await asyncio.to_thread(inside2.wait, 10)
        # queued while that transaction runs: it goes into the next one, where it would fit
        small = asyncio.ensure_future(broker.publish("room", "alice", "small", client_id="s"))
        await _release_after_handover(broker, go2)

        for refused in (held2, big, small):
            with pytest.raises(BrokerUnavailable):
                await refused
        assert (await broker.history("room", since=None, limit=10)).last_id == 1

        again = await broker.publish("room", "alice", "small", client_id="s")
        assert not again.duplicate and again.message.id == 2
        assert broker.healthy()
    finally:
        await broker.close()

    reopened = SQLiteBroker(tmp_path)
    await reopened.start()
    try:
        kept = await reopened.history("room", since=None, limit=10)
        assert [(m.id, m.text) for m in kept.messages] == [(1, "first"), (2, "small")]
    finally:
        await reopened.close()


async def test_publish_nowait_answers_in_call_order_repeats_included(tmp_path: Path) -> None:
    """The pipelined API: every answer comes in the order of the calls, a repeat of a client
    id in flight with its original's id, a repeat of a stored one with the stored message,
    and publishes made before the room was read keep their place behind the read."""
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    answers: list[tuple[str, int, bool]] = []
    expected = 0
    all_in = asyncio.Event()

    def done(tag: str) -> PublishDone:
        def record(result: PublishResult | None, error: Exception | None) -> None:
            assert result is not None, error
            answers.append((tag, result.message.id, result.duplicate))
            if len(answers) == expected:
                all_in.set()

        return record

    try:
        # the room is not in memory yet: these wait for its read, in order
        expected = 3
        broker.publish_nowait("room", "alice", "one", client_id="a", done=done("one"))
        broker.publish_nowait("room", "alice", "one", client_id="a", done=done("one again"))
        broker.publish_nowait("room", "alice", "two", client_id="b", done=done("two"))
        assert answers == []  # never answered before the call returns
        await asyncio.wait_for(all_in.wait(), 5)
        assert answers == [("one", 1, False), ("one again", 1, True), ("two", 2, False)]

        answers.clear()
        all_in.clear()
        broker.publish_nowait("room", "alice", "three", client_id="c", done=done("three"))
        broker.publish_nowait("room", "alice", "one", client_id="a", done=done("stored"))
        broker.publish_nowait("room", "bob", "four", done=done("four"))
        await asyncio.wait_for(all_in.wait(), 5)
        assert answers == [("three", 3, False), ("stored", 1, True), ("four", 4, False)]
    finally:
        await broker.close()


async def test_the_wal_is_checkpointed_by_another_thread_not_in_a_loop_commit(
    tmp_path: Path,
) -> None:
    """One message at a time is committed on the loop's thread; the reader's thread
    checkpoints, on a connection of its own (the writer's stays free for the loop's commits
    meanwhile). SQLite's auto-checkpoint, inside such a commit, waits for a WAL this load
    never makes (the catch-up of the next test)."""
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    try:
        # The room's creation is the first commit: the last of these asks for a checkpoint.
        for i in range(CHECKPOINT_COMMITS - 1):
            await broker.publish("room", "alice", f"m{i}")
        assert broker._reader is not None
        await broker._reader.settled()  # that checkpoint is done: the next commit restarts
        await broker.publish("room", "alice", "last")  # the WAL from its beginning
        # Had nobody checkpointed, the WAL would hold every commit's pages (4-5 each, over
        # a thousand); the checkpoint let it start again from the beginning.
        other = sqlite3.connect(broker.path)  # a checkpoint needs no open transaction
        try:
            _, frames, _ = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            other.close()
        assert 0 < frames < 200
        history = await broker.history("room", since=None, limit=1)
        assert [m.text for m in history.messages] == ["last"]
        auto = await broker.run(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone())
        assert auto == (WAL_CATCH_UP_FRAMES,)
    finally:
        await broker.close()


async def test_the_wal_stays_bounded_under_a_steady_load(tmp_path: Path) -> None:
    """Commits back to back, one message each: the reader's thread never catches up with
    them alone, and the WAL, reset only after a checkpoint that did, grew without end
    (217 MB after these 30,000 commits). The writer's own catch-up keeps it bounded."""
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    wal = tmp_path / "chatctl.db-wal"
    biggest = 0
    try:
        for i in range(30_000):
            await broker.publish(f"room{i % 5}", "alice", "x" * 60, client_id=f"c{i}")
            if i % 500 == 0 and wal.exists():
                biggest = max(biggest, wal.stat().st_size)
        history = await broker.history("room4", since=None, limit=1)
        assert [m.client_id for m in history.messages] == ["c29999"]
    finally:
        await broker.close()
    frame = 4096 + 24  # a page and its frame header
    assert 0 < biggest <= (WAL_CATCH_UP_FRAMES + 1024) * frame, f"WAL reached {biggest} bytes"


async def test_the_switch_interval_is_short_only_while_the_writer_thread_has_work(
    tmp_path: Path,
) -> None:
    """Every statement the thread runs waits for the GIL from the busy loop: while it has work
    the interpreter switches every 0.5 ms, then goes back to what it was."""
    before = sys.getswitchinterval()
    broker = SQLiteBroker(tmp_path)
    await broker.start()
    try:
        during = await broker.run(lambda db: sys.getswitchinterval())  # runs in the thread
        assert during == pytest.approx(min(before, THREAD_SWITCH_INTERVAL))
        assert sys.getswitchinterval() == before
    finally:
        await broker.close()
        sys.setswitchinterval(before)
