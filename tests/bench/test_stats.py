"""The bench's pure statistics: marker, percentiles, per-pair tracking and the step totals."""

from __future__ import annotations

import math

import pytest

from chatctl.bench.stats import (
    PairCounts,
    SeqTracker,
    account,
    lost_from,
    make_text,
    parse_marker,
    percentile,
    summarize,
)


def test_marker_round_trip_and_size() -> None:
    text = make_text(3, 17, 42, 1_700_000_000_123_456, 64)
    assert len(text) == 64
    assert parse_marker(text) == (3, 17, 42, 1_700_000_000_123_456)


def test_marker_longer_than_size_is_kept_whole() -> None:
    text = make_text(0, 1, 2, 3, 4)
    assert text == "#B0.1.2.3#"
    assert parse_marker(text) == (0, 1, 2, 3)


def test_text_without_marker() -> None:
    assert parse_marker("hello") is None
    assert parse_marker("x#B0.1.2.3#") is None  # only at the start


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([1, 2, 3, 4], 51) == 3


def test_percentile_empty_and_bad_p() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summarize_sorts() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert s["count"] == 5
    assert s["p50"] == 3.0
    assert s["max"] == 5.0
    assert s["mean"] == 3.0
    empty = summarize([])
    assert empty["count"] == 0 and math.isnan(empty["p99"])


def test_tracker_in_order() -> None:
    t = SeqTracker()
    for seq in range(10):
        t.add(seq)
    assert (t.distinct, t.duplicates, t.out_of_order, t.missing) == (10, 0, 0, set())


def test_tracker_gap_then_late_arrival_is_out_of_order() -> None:
    t = SeqTracker()
    for seq in (0, 1, 3, 4, 2):
        t.add(seq)
    assert t.distinct == 5
    assert t.out_of_order == 1
    assert t.duplicates == 0
    assert not t.missing


def test_tracker_duplicates() -> None:
    t = SeqTracker()
    for seq in (0, 1, 1, 2, 0, 2):
        t.add(seq)
    assert t.distinct == 3
    assert t.duplicates == 3
    assert t.received == 6


def test_tracker_gap_never_filled_is_lost() -> None:
    t = SeqTracker()
    for seq in range(20):
        if seq % 10 != 9:
            t.add(seq)
    high, missing, received, dup, ooo = t.snapshot()
    assert (high, missing, received, dup, ooo) == (19, 1, 18, 0, 0)
    assert lost_from(high, missing, sent=20) == 2  # seq 9 (gap) and seq 19 (tail)


def test_lost_from() -> None:
    assert lost_from(10, 0, 10) == 0
    assert lost_from(0, 0, 10) == 10
    assert lost_from(8, 2, 10) == 4


def test_account_counts_every_receiver_in_the_senders_room() -> None:
    # room 0: clients 0 (sender), 1, 2; room 1: clients 3 (sender), 4
    room_of = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1}
    sent = {0: 10, 3: 5}
    pairs = [
        PairCounts(0, 0, 10, 0, 10, 0, 0),
        PairCounts(1, 0, 10, 1, 10, 1, 0),  # one gap, one duplicate
        PairCounts(2, 0, 7, 0, 7, 0, 2),  # tail of 3 lost, 2 out of order
        PairCounts(3, 3, 5, 0, 5, 0, 0),
        # client 4 never heard from sender 3: all 5 lost
    ]
    acc = account(sent, room_of, [0, 1, 2, 3, 4], pairs)
    assert acc.sent == 15
    assert acc.expected == 3 * 10 + 2 * 5
    assert acc.lost == 0 + 1 + 3 + 0 + 5
    assert acc.delivered == acc.expected - acc.lost
    assert acc.duplicates == 1
    assert acc.out_of_order == 2
    assert acc.loss_ratio == pytest.approx(9 / 40)


def test_account_ignores_receivers_that_were_not_connected() -> None:
    room_of = {0: 0, 1: 0}
    acc = account({0: 4}, room_of, [0], [PairCounts(0, 0, 4, 0, 4, 0, 0)])
    assert acc.expected == 4 and acc.lost == 0
