"""Run a server on asyncio's loop with every turn of the loop timed and every callback
attributed; print a summary on SIGTERM (or at exit).

    CHATCTL_LOOP=asyncio PYTHONPATH=src python bench/loop_turns.py -m chatctl serve --memory
    python bench/loop_turns.py bench/reference_server.py --port 8300

A turn's busy time is the time its callbacks took (not the wait in ``select``). Callbacks
are grouped by kind: a task's steps by its coroutine's name, others by the function's.
Recording starts at SIGUSR1 (send it once the bench's step has begun) or at once with
``TURNS_FROM_START=1``. asyncio's loop only (uvloop's turns cannot be hooked from Python):
chatctl needs ``CHATCTL_LOOP=asyncio``. It slows every callback by two clock reads; compare
servers traced alike.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import atexit
import os
import runpy
import signal
import sys
import time
from collections import defaultdict
from typing import Any

perf = time.perf_counter
#: (busy seconds, callbacks) of every recorded turn
turns: list[tuple[float, int]] = []
total: dict[str, float] = defaultdict(float)
count: dict[str, int] = defaultdict(int)
longest: dict[str, float] = defaultdict(float)
current = {"callbacks": 0, "busy": 0.0}
recording = [bool(os.environ.get("TURNS_FROM_START"))]

_run_handle = asyncio.events.Handle._run
_run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]


def _kind(handle: asyncio.Handle) -> str:
    callback: Any = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro: Any = owner.get_coro()
        return "task:" + getattr(coro, "__qualname__", type(coro).__name__)
    return str(getattr(callback, "__qualname__", repr(callback)))


def _timed_handle(self: asyncio.Handle) -> None:
    started = perf()
    try:
        _run_handle(self)
    finally:
        took = perf() - started
        current["callbacks"] += 1
        current["busy"] += took
        if recording[0]:
            kind = _kind(self)
            total[kind] += took
            count[kind] += 1
            longest[kind] = max(longest[kind], took)


def _timed_turn(self: asyncio.AbstractEventLoop) -> None:
    current["callbacks"], current["busy"] = 0, 0.0
    _run_once(self)
    if recording[0] and current["callbacks"]:
        turns.append((current["busy"], int(current["callbacks"])))


def _start(*_: object) -> None:
    turns.clear()
    total.clear()
    count.clear()
    longest.clear()
    recording[0] = True


def _at(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(fraction * len(values)))]


def report() -> None:
    if not turns:
        print("no turns recorded", file=sys.stderr)
        return
    busy = sorted(t for t, _ in turns)
    calls = sorted(float(c) for _, c in turns)
    print(
        f"TURNS {len(busy)}: busy ms p50 {_at(busy, 0.5) * 1e3:.2f} p90 {_at(busy, 0.9) * 1e3:.2f}"
        f" p99 {_at(busy, 0.99) * 1e3:.2f} max {busy[-1] * 1e3:.1f}; callbacks a turn p50"
        f" {_at(calls, 0.5):.0f} p99 {_at(calls, 0.99):.0f} max {calls[-1]:.0f};"
        f" busy in all {sum(busy):.2f} s",
        file=sys.stderr,
    )
    print("by kind: seconds, callbacks, µs each, longest ms", file=sys.stderr)
    for kind in sorted(total, key=total.__getitem__, reverse=True)[:15]:
        each = total[kind] / count[kind] * 1e6
        print(
            f"  {total[kind]:7.3f} {count[kind]:8d} {each:8.1f} {longest[kind] * 1e3:7.2f}  {kind}",
            file=sys.stderr,
        )
    sys.stderr.flush()


def _stop(*_: object) -> None:
    report()
    os._exit(0)


def main() -> None:
    asyncio.events.Handle._run = _timed_handle  # type: ignore[method-assign]
    asyncio.base_events.BaseEventLoop._run_once = _timed_turn  # type: ignore[attr-defined]
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGTERM, _stop)
    atexit.register(report)
    args = sys.argv[1:]
    if args and args[0] == "-m":
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()
