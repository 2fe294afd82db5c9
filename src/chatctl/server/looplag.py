"""Event-loop lag: how late the loop runs a timer, the time every connection waited.

One timer callback, due every :data:`PERIOD` seconds, records how late it ran: the time
the loop spent on something else (a long callback, a blocking call, a slow commit on the
loop's thread, a garbage-collector pause, the GIL held by another thread) when it was due.
A stall longer than the period is always seen; a shorter one only when it covers the
timer's due time, so the histogram samples stalls rather than counting every one. No task,
no future: one ``call_at`` and one histogram observation (2.8 µs) per period; an idle
server pays ~2 ms of CPU a second for the 20 wake-ups (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: Seconds between two samples.
PERIOD = 0.05
#: Histogram buckets (seconds): a loop that keeps up lands in the first ones.
BUCKETS = (
    *(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class LoopLag:
    """Observes, with ``observe(seconds)``, how late each of its timers ran."""

    def __init__(self, observe: Callable[[float], None], *, period: float = PERIOD) -> None:
        self._observe = observe
        self._period = period
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        #: the largest lag seen since start (for tests and benches reading the object)
        self.worst = 0.0

    def start(self) -> None:
        """Start sampling on the running loop (again after :meth:`stop`)."""
        self.stop()
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self._period
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        lag = now - self._due
        if lag < 0.0:  # the loop runs timers up to its clock's resolution early
            lag = 0.0
        if lag > self.worst:
            self.worst = lag
        self._observe(lag)
        self._due = now + self._period
        self._handle = loop.call_at(self._due, self._tick)
