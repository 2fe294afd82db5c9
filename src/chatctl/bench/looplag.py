"""The server's event-loop lag over a bench step, from the ``chatctl_event_loop_lag_seconds``
histogram of its ``/metrics`` (chatctl servers; None for a server without it, such as the
reference relay): the samples taken while the step sent, how many were late by more than
10, 50 and 100 ms, and the bucket that holds their 99th percentile."""

from __future__ import annotations

import asyncio
import math
import time
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

LAG = "chatctl_event_loop_lag_seconds"


def metrics_url(server: str) -> str:
    """``ws[s]://host:port[/...]`` -> ``http[s]://host:port/metrics``."""
    scheme, _, rest = server.partition("://")
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}/metrics"


def _buckets(url: str) -> dict[float, float] | None:
    """Cumulative counts by upper bound (seconds), or None."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except (OSError, ValueError):
        return None
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != LAG:
            continue
        for s in family.samples:
            if s.name == f"{LAG}_bucket":
                out[float(s.labels["le"])] = s.value
    return out or None


def summarize(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """The step's share of the histogram (``after`` - ``before``)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]

    def over(seconds: float) -> int:
        below = max((c for b, c in zip(bounds, counts, strict=True) if b <= seconds), default=0)
        return int(total - below)

    p99 = next((b for b, c in zip(bounds, counts, strict=True) if c >= 0.99 * total), math.inf)
    worst = next((b for b, c in zip(bounds, counts, strict=True) if c >= total), math.inf)
    return {
        "samples": int(total),
        "over_10ms": over(0.01),
        "over_50ms": over(0.05),
        "over_100ms": over(0.1),
        "p99_le_ms": None if math.isinf(p99) else round(p99 * 1000, 1),
        "max_le_ms": None if math.isinf(worst) else round(worst * 1000, 1),
    }


async def server_loop_lag(server: str, start: float, end: float) -> dict[str, Any] | None:
    """The loop lag of ``server`` between wall times ``start`` and ``end``."""
    url = metrics_url(server)
    await asyncio.sleep(max(0.0, start - time.time()))
    before = await asyncio.to_thread(_buckets, url)
    if before is None:
        return None
    await asyncio.sleep(max(0.0, end - time.time()))
    after = await asyncio.to_thread(_buckets, url)
    return None if after is None else summarize(before, after)
