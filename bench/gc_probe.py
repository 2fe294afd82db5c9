"""Run a server with the garbage collector's pauses recorded; print them on exit.

    PYTHONPATH=src python bench/gc_probe.py -m chatctl serve --port 8200
    python bench/gc_probe.py bench/reference_server.py --port 8300

Every collection's generation and duration is kept (gc.callbacks); at exit one line per
generation goes to stderr: collections, total and longest pause in ms.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
import time

pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
#: (wall time, generation, pause in s, objects tracked after) of every pause over 5 ms
long_pauses: list[tuple[float, int, float, int]] = []
_started = [0.0]


def _callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        pause = time.perf_counter() - _started[0]
        pauses[info["generation"]].append(pause)
        if pause > 0.005:
            tracked = len(gc.get_objects()) if info["generation"] == 2 else 0
            long_pauses.append((time.time(), info["generation"], pause, tracked))


def _report() -> None:
    for gen, p in pauses.items():
        total = sum(p) * 1000
        worst = max(p, default=0.0) * 1000
        print(
            f"gc generation {gen}: {len(p)} collections, {total:.1f} ms total, "
            f"longest {worst:.2f} ms",
            file=sys.stderr,
        )
    for at, gen, pause, tracked in long_pauses:
        stamp = time.strftime("%H:%M:%S", time.localtime(at)) + f"{at % 1:.3f}"[1:]
        objects = f", {tracked} objects tracked" if tracked else ""
        print(f"  {stamp} generation {gen} paused {pause * 1000:.1f} ms{objects}", file=sys.stderr)


def _census(signum: int, frame: object) -> None:
    """SIGUSR1: print the 25 most common tracked object types (to stderr)."""
    from collections import Counter

    counts = Counter(type(o).__name__ for o in gc.get_objects())
    print(f"census: {sum(counts.values())} objects tracked", file=sys.stderr)
    for name, n in counts.most_common(25):
        print(f"  {n:8d} {name}", file=sys.stderr)


gc.callbacks.append(_callback)
atexit.register(_report)
signal.signal(signal.SIGUSR1, _census)
if os.environ.get("GC_PROBE_FREEZE"):
    gc.freeze()
if os.environ.get("GC_PROBE_THRESHOLD"):
    gc.set_threshold(*(int(x) for x in os.environ["GC_PROBE_THRESHOLD"].split(",")))

if __name__ == "__main__":
    import runpy

    args = sys.argv[1:]
    if args[:1] == ["-m"]:
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
