"""Run a server under tracemalloc; SIGUSR1 marks a baseline, the next SIGUSR1 prints what
was allocated since (and is still alive), by source line, to stderr.

    PYTHONPATH=src python bench/mem_probe.py -m chatctl serve --port 8200 &
    kill -USR1 $!            # baseline: the server is up, no connection yet
    chatctl bench --server ws://127.0.0.1:8200 --rooms 0 --idle 1000 --duration 20 &
    sleep 10; kill -USR1 $!  # what 1,000 idle connections hold, line by line

``MEM_PROBE_FRAMES`` (default 1) frames per traceback; with more, the lines are grouped by
their whole traceback (``MEM_PROBE_TOP`` entries, default 40). ``bench/mem_diff.py`` diffs
two reports (e.g. the reference's and chatctl's) line by line, in bytes per connection.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc

_FRAMES = int(os.environ.get("MEM_PROBE_FRAMES", "1"))
_TOP = int(os.environ.get("MEM_PROBE_TOP", "40"))
_baseline: list[tracemalloc.Snapshot] = []


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )


def _mark(signum: int, frame: object) -> None:
    if not _baseline:
        _baseline.append(_snapshot())
        print("mem_probe: baseline taken", file=sys.stderr, flush=True)
        return
    key = "lineno" if _FRAMES == 1 else "traceback"
    stats = _snapshot().compare_to(_baseline[0], key)
    total = sum(s.size_diff for s in stats)
    print(f"mem_probe: {total / 1024:.1f} KiB more than the baseline", file=sys.stderr)
    for s in stats[:_TOP]:
        where = s.traceback.format()[-2 * _FRAMES :] if _FRAMES > 1 else [str(s.traceback)]
        print(
            f"  {s.size_diff / 1024:9.1f} KiB {s.count_diff:8d} blocks  {' | '.join(where)}",
            file=sys.stderr,
        )
    sys.stderr.flush()


tracemalloc.start(_FRAMES)
signal.signal(signal.SIGUSR1, _mark)

if __name__ == "__main__":
    import runpy

    args = sys.argv[1:]
    if args[:1] == ["-m"]:
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
