"""Backoff between connection attempts: capped, exponential, jittered."""

from __future__ import annotations

from chatctl.client.backoff import Backoff


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(initial=0.2, cap=10.0)
    delays = [b.next() for _ in range(12)]
    for n, d in enumerate(delays):
        base = min(10.0, 0.2 * 2**n)
        assert base / 2 <= d <= base
    assert max(delays) <= 10.0
    b.reset()
    assert b.next() <= 0.2
