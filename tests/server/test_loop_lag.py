"""The event loop's lag in /metrics: a loop held on purpose shows in the histogram's slow
buckets, on an in-process server and on a real ``chatctl serve`` (the SQLite default)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from support.harden_helpers import http_get
from support.helpers import ServeProcess, make_server
from support.metrics import samples

LAG = "chatctl_event_loop_lag_seconds"


def slower_than(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], le: str) -> float:
    """Samples of the lag histogram above the bucket ``le`` (seconds)."""
    total = metrics[f"{LAG}_count", ()]
    return total - metrics[f"{LAG}_bucket", (("le", le),)]


async def test_a_blocked_loop_is_counted_in_a_slow_bucket() -> None:
    srv = make_server()
    async with srv:
        before = samples((await http_get(srv.port, "/metrics"))[2].decode())
        assert slower_than(before, "0.1") == 0
        # The stimulus, not a wait: a blocking call on the server's own loop, as a slow
        # callback would be. The lag timer, overdue, runs in the loop's next turn, before
        # the request below can be answered.
        time.sleep(0.3)  # noqa: ASYNC251 - blocking the loop is the point
        after = samples((await http_get(srv.port, "/metrics"))[2].decode())
    assert slower_than(after, "0.1") >= 1
    assert srv.metrics.loop_lag.worst >= 0.1


async def test_a_stopped_serve_process_shows_its_lag_in_metrics() -> None:
    proc = ServeProcess().start()  # the SQLite default
    try:
        status, _, body = await http_get(proc.port, "/metrics")
        assert status == 200
        text = body.decode()
        assert f"# TYPE {LAG} histogram" in text and f'{LAG}_bucket{{le="0.25"}}' in text
        assert slower_than(samples(text), "0.25") == 0
        assert proc.proc is not None
        # The whole process held for 0.4 s (as a machine too busy to schedule it would):
        # its loop's timer is late by about that much once it runs again.
        os.kill(proc.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(0.4)
        finally:
            os.kill(proc.proc.pid, signal.SIGCONT)
        m = samples((await http_get(proc.port, "/metrics"))[2].decode())
        assert slower_than(m, "0.25") >= 1
    finally:
        assert proc.stop() == 0
