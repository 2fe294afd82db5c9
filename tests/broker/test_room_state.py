"""A room's kept history and de-duplication records as the in-process brokers hold them:
what they answer, when they forget, and that the garbage collector never walks them (a
full collection's pause grew with every record and kept message: see docs/performance.md)."""

from __future__ import annotations

import gc

import pytest

from chatctl.broker import rooms
from chatctl.broker.rooms import DEDUP_EXPIRY_STEP, DedupRecords, RoomState
from chatctl.protocol import Message, valid_user


def msg(i: int, ts: float, client_id: str | None = None, user: str = "ann") -> Message:
    return Message(i, "r", user, f"text {i}", ts, "text", client_id)


def test_records_answer_id_and_time_per_user_and_client_id() -> None:
    d = DedupRecords()
    d.add("ann", "c1", 7, 100.25)
    d.add("bob", "c1", 8, 101.5)
    assert d.get("ann", "c1", 0.0) == (7, 100.25)
    assert d.get("bob", "c1", 0.0) == (8, 101.5)
    assert d.get("ann", "c2", 0.0) is None
    assert d.get("ann", "c1", 100.5) is None  # seen before the window's start
    # the key is user NUL client_id: a client id may hold a NUL, a user name may not, so
    # two pairs never share a key
    d.add("a", "b\x00c", 9, 102.0)
    assert d.get("a", "b\x00c", 0.0) == (9, 102.0)
    assert d.get("a", "b", 0.0) is None
    assert not valid_user("a\x00b")
    assert len(d) == 3


def test_ids_up_to_2_to_the_53_come_back_exact() -> None:
    d = DedupRecords()
    big = 2**53 - 1
    d.add("ann", "c", big, 1765000000.123)
    assert d.get("ann", "c", 0.0) == (big, 1765000000.123)


def test_records_expire_in_order_at_most_one_step_late() -> None:
    d = DedupRecords()
    for i in range(10):
        d.add("ann", f"c{i}", i + 1, 100.0 + i)
    d.forget_before(100.5)  # the first could go, but is not a step old: not looked for
    assert len(d) == 10
    d.forget_before(100.0 + DEDUP_EXPIRY_STEP + 0.5)  # 100.0 and 101.0 are before it
    assert len(d) == 8
    assert d.get("ann", "c1", 0.0) is None
    assert d.get("ann", "c2", 0.0) == (3, 102.0)
    d.forget_before(1000.0)
    assert len(d) == 0
    d.add("ann", "again", 11, 1000.5)  # empty, then used again
    d.forget_before(1001.0)
    assert d.get("ann", "again", 0.0) == (11, 1000.5)
    d.forget_before(1000.5 + DEDUP_EXPIRY_STEP + 0.1)
    assert len(d) == 0


def test_beyond_the_cap_the_oldest_sixteenth_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rooms, "MAX_DEDUP_ENTRIES", 160)
    d = DedupRecords()
    for i in range(161):
        d.add("ann", f"c{i}", i + 1, 100.0 + i / 1000)
    assert len(d) == 150  # 161 - (1 + 160 // 16)
    assert d.get("ann", "c10", 0.0) is None
    assert d.get("ann", "c11", 0.0) == (12, 100.011)
    assert d.get("ann", "c160", 0.0) == (161, 100.16)


def test_history_and_records_are_never_tracked_by_the_collector() -> None:
    r = RoomState("r", history_size=1000)
    for i in range(1, 2001):
        r.remember(msg(i, 100.0 + i, client_id=f"c{i}"))
    gc.collect()  # the pass that finds the history's tuples hold only strings and numbers
    assert not gc.is_tracked(r.seen._records)
    assert not any(gc.is_tracked(k) for k in r.log)
    r.remember(msg(2001, 3000.0, client_id="c2001"))
    assert not gc.is_tracked(r.seen._records)  # adding a record does not track the dict


def test_history_reads_give_messages_back() -> None:
    r = RoomState("r", history_size=3)
    for i in range(1, 6):
        r.remember(msg(i, 100.0 + i, client_id=f"c{i}"))
    h = r.history(None, 10)
    assert [m.id for m in h.messages] == [3, 4, 5]
    assert h.messages[0] == msg(3, 103.0, "c3")
    assert r.kept(4) == msg(4, 104.0, "c4")
    assert r.kept(2) is None
    # a repeat of a kept message is the message itself; of a trimmed one, rebuilt from the
    # record: the original's id and time, the repeat's text
    assert r.original("ann", "c5", "other", "text", horizon=100.0) == msg(5, 105.0, "c5")
    trimmed = r.original("ann", "c1", "again", "text", horizon=100.0)
    assert trimmed is not None and (trimmed.id, trimmed.ts, trimmed.text) == (1, 101.0, "again")
    # a record older than the window's start does not answer, forgotten or not yet
    assert r.original("ann", "c1", "again", "text", horizon=101.5) is None
    assert r.delete(4)
    deleted = r.kept(4)
    assert deleted is not None and deleted.deleted and deleted.text == ""
    assert not r.delete(4)
    r.forget_messages_before(104.5)
    assert [m.id for m in r.history(None, 10).messages] == [5]
