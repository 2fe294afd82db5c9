"""The server process as ``chatctl bench --server-pid`` sees it: its CPU time and resident
memory, read from /proc (None without a pid or when /proc cannot be read)."""

from __future__ import annotations

import asyncio
import os
import time


def read_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds ``pid`` has used, from /proc (None without a pid)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_cpu_seconds(pid: int | None, start: float, end: float) -> float | None:
    """CPU seconds the server used between wall times ``start`` and ``end``."""
    await asyncio.sleep(max(0.0, start - time.time()))
    before = read_cpu_seconds(pid)
    await asyncio.sleep(max(0.0, end - time.time()))
    after = read_cpu_seconds(pid)
    return None if before is None or after is None else after - before


def read_rss_kib(pid: int | None) -> int | None:
    """Resident set size of ``pid`` in KiB from /proc (None without a pid or on error)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpus_of(pid: int | None) -> set[int] | None:
    """The CPUs ``pid`` may run on (0: this process); None where that cannot be read."""
    if pid is None or not hasattr(os, "sched_getaffinity"):
        return None
    try:
        return set(os.sched_getaffinity(pid))
    except OSError:
        return None
