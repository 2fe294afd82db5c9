"""Pure statistics for ``chatctl bench``: the message marker, percentiles, and the accounting
of what each receiver got from each sender (lost, duplicate, out of order).

No I/O and no clocks: everything here is tested with plain function calls.

Accounting model. Every sent message carries ``(step, sender, seq, send time)``; a sender's
sequence numbers are 0, 1, 2, … within a step. Every receiver keeps one :class:`SeqTracker`
per sender it hears from. After the drain, a (receiver, sender) pair in the same room
*expected* every seq the sender sent, so

- ``lost``        = sent - distinct seqs received,
- ``duplicates``  = deliveries of a seq already received,
- ``out_of_order``= deliveries of a seq lower than one already received (and new).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: ``#B<step>.<sender>.<seq>.<send time in µs>#`` at the start of every bench message text.
MARKER_RE = re.compile(r"#B(\d+)\.(\d+)\.(\d+)\.(\d+)#")
_PAD = "abcdefghijklmnopqrstuvwxyz0123456789"


def make_text(step: int, sender: int, seq: int, sent_us: int, size: int) -> str:
    """A message text of ``size`` characters (at least the marker) carrying the marker."""
    head = f"#B{step}.{sender}.{seq}.{sent_us}#"
    if len(head) >= size:
        return head
    fill = size - len(head)
    return head + (_PAD * (fill // len(_PAD) + 1))[:fill]


def parse_marker(text: str) -> tuple[int, int, int, int] | None:
    """``(step, sender, seq, sent_us)`` from a bench message text, or None if it has none."""
    m = MARKER_RE.match(text)
    if m is None:
        return None
    return int(m[1]), int(m[2]), int(m[3]), int(m[4])


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ascending ``sorted_values`` by the nearest-rank
    method: the smallest value with at least p% of the values at or below it. NaN if empty."""
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(p / 100 * n))
    return sorted_values[rank - 1]


def summarize(values: Iterable[float], ps: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """Count, the percentiles ``ps`` (keys ``p50`` …), ``max`` and ``mean`` of ``values``."""
    s = sorted(values)
    out: dict[str, float] = {"count": float(len(s))}
    for p in ps:
        out[f"p{p:g}"] = percentile(s, p)
    out["max"] = s[-1] if s else math.nan
    out["mean"] = sum(s) / len(s) if s else math.nan
    return out


class SeqTracker:
    """What one receiver got from one sender: O(1) per in-order delivery, memory only for gaps.

    ``high`` is one past the highest seq seen; ``missing`` holds the seqs below it not seen yet.
    """

    __slots__ = ("duplicates", "high", "missing", "out_of_order", "received")

    def __init__(self) -> None:
        self.high = 0
        self.missing: set[int] = set()
        self.received = 0
        self.duplicates = 0
        self.out_of_order = 0

    def add(self, seq: int) -> None:
        self.received += 1
        high = self.high
        if seq == high:
            self.high = high + 1
        elif seq > high:
            self.missing.update(range(high, seq))
            self.high = seq + 1
        elif seq in self.missing:
            self.missing.discard(seq)
            self.out_of_order += 1
        else:
            self.duplicates += 1

    @property
    def distinct(self) -> int:
        return self.high - len(self.missing)

    def snapshot(self) -> tuple[int, int, int, int, int]:
        """``(high, missing, received, duplicates, out_of_order)`` — all counts, picklable."""
        return self.high, len(self.missing), self.received, self.duplicates, self.out_of_order


def lost_from(high: int, missing: int, sent: int) -> int:
    """Lost seqs for a pair whose tracker reached ``high`` with ``missing`` gaps below it,
    when the sender sent ``sent`` (seqs 0 … sent-1). Assumes every seq seen is below ``sent``."""
    return max(0, sent - (min(high, sent) - missing))


@dataclass
class Accounting:
    """Totals over every (receiver, sender) pair of one step."""

    sent: int = 0  # messages sent
    expected: int = 0  # deliveries expected: each message x receivers in its room
    delivered: int = 0  # distinct deliveries
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    late: int = 0  # deliveries of an earlier step's messages, after its drain ended
    unmarked: int = 0  # message frames without a bench marker (not ours)

    @property
    def loss_ratio(self) -> float:
        return self.lost / self.expected if self.expected else 0.0


@dataclass
class PairCounts:
    """One receiver's view of one sender, as a worker reports it."""

    receiver: int
    sender: int
    high: int
    missing: int
    received: int
    duplicates: int
    out_of_order: int


def account(
    sent: dict[int, int],
    room_of: dict[int, int],
    receivers: Iterable[int],
    pairs: Iterable[PairCounts],
) -> Accounting:
    """Total up one step.

    ``sent`` maps each sender to the messages it sent, ``room_of`` every client (sender or
    receiver) to its room, ``receivers`` are the clients that were connected for the whole
    step, and ``pairs`` what each receiver got from each sender (pairs never heard from may
    be absent: everything expected from them is lost).
    """
    acc = Accounting(sent=sum(sent.values()))
    by_pair = {(p.receiver, p.sender): p for p in pairs}
    senders_in: dict[int, list[int]] = {}
    for s in sent:
        senders_in.setdefault(room_of[s], []).append(s)
    for r in receivers:
        for s in senders_in.get(room_of[r], ()):
            n = sent[s]
            acc.expected += n
            p = by_pair.get((r, s))
            if p is None:
                acc.lost += n
                continue
            distinct = min(p.high, n) - p.missing
            acc.delivered += distinct
            acc.lost += lost_from(p.high, p.missing, n)
            acc.duplicates += p.duplicates
            acc.out_of_order += p.out_of_order
    return acc
