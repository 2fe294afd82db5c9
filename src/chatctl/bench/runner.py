"""The driver of ``chatctl bench``: plan the connections, spread them over worker processes,
run one step (or, with ``saturate``, steps of rising rate until the knee) and total it up.

:func:`run_bench` returns one plain dict (what ``--json`` prints); report.py renders it.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from chatctl.bench.looplag import server_loop_lag
from chatctl.bench.options import BenchError, BenchOptions, plan
from chatctl.bench.processes import ChildWorker, LocalWorker, loop_name
from chatctl.bench.procfs import cpus_of, read_rss_kib, server_cpu_seconds
from chatctl.bench.stats import PairCounts, account, summarize
from chatctl.bench.summary import connect_summary, find_knee, memory_summary, run_warnings
from chatctl.bench.worker import ClientSpec
from chatctl.errors import AuthError, ChatctlError, ConnectError

#: Seconds between sending the step to the workers and its first message.
STEP_LEAD = 0.5


Progress = Callable[..., None]


def _no_progress(event: str, **data: Any) -> None:
    return None


def cpu_placement(server_pid: int | None) -> dict[str, Any]:
    """How many CPUs the load may use, and whether the server may use any of them (unknown
    without ``--server-pid``: then assumed)."""
    mine = cpus_of(0)
    theirs = cpus_of(server_pid)
    cpus = len(mine) if mine is not None else os.cpu_count() or 1
    shared = mine is None or theirs is None or bool(mine & theirs)
    return {"cpus": cpus, "shares_cpus_with_server": shared}


async def run_bench(opts: BenchOptions, progress: Progress = _no_progress) -> dict[str, Any]:
    """Run the bench described by ``opts`` and return its result."""
    if opts.senders > opts.clients:
        raise BenchError("--senders cannot exceed --clients (senders are clients of the room)")
    run_id = secrets.token_hex(3)
    specs = plan(opts, run_id)
    if not specs:
        raise BenchError("nothing to do: give --rooms and --clients, or --idle")
    procs = max(1, min(opts.procs, len(specs)))
    sender_rooms = {s.index: s.room for s in specs if s.sender}
    shares = [specs[w::procs] for w in range(procs)]
    executor = ThreadPoolExecutor(max_workers=procs)
    handles: list[LocalWorker | ChildWorker] = []
    result: dict[str, Any] = {
        "server": opts.servers[0] if len(opts.servers) == 1 else list(opts.servers),
        "run_id": run_id,
        "options": opts.public(),
        "client": {"procs": procs, "loop": loop_name(), **cpu_placement(opts.server_pid)},
        "clock": "time.time() on one host: sender and receiver processes share the wall clock",
    }
    try:
        for share in shares:
            args = {
                "specs": share,
                "sender_rooms": sender_rooms,
                "token": opts.token,
                "secret": opts.secret,
            }
            handles.append(LocalWorker(args) if procs == 1 else ChildWorker(args, executor))
        rss_before = read_rss_kib(opts.server_pid)
        progress("connect", total=len(specs))
        started = time.perf_counter()
        conns = await asyncio.gather(
            *(h.call("connect", timeout=opts.connect_timeout) for h in handles)
        )
        result["connect"] = connect_summary(conns, len(specs), time.perf_counter() - started)
        # Let the server finish what the connects set off (welcomes, presence) first.
        quiet = await asyncio.gather(*(h.call("quiet", period=0.5, timeout=30) for h in handles))
        result["connect"]["settle_s"] = round(max(q["waited"] for q in quiet), 2)
        result["connect"]["frames"] = sum(q["frames"] for q in quiet)
        rss_after = read_rss_kib(opts.server_pid)
        result["memory"] = memory_summary(
            opts, rss_before, rss_after, result["connect"]["connected"]
        )
        progress("connected", connect=result["connect"], memory=result["memory"])
        if result["connect"]["connected"] == 0:
            raise _nothing_connected(result["connect"]["failures"])

        steps: list[dict[str, Any]] = []
        result["steps"] = steps
        if sender_rooms and opts.rate > 0:
            rate = opts.rate
            retried = False
            first = 0
            if opts.warmup > 0:  # unrecorded traffic first: measure a steady state
                progress("step", step="warm-up", rate=rate, duration=opts.warmup, drain=0)
                warm = await _run_step(opts, handles, specs, 0, rate, duration=opts.warmup)
                result["warmup"] = {k: warm[k] for k in ("duration", "sent", "lost", "latency_ms")}
                first = 1
            for i in range(first, first + (opts.max_steps if opts.saturate else 1)):
                progress("step", step=i, rate=rate, duration=opts.duration, drain=opts.drain)
                step = await _run_step(opts, handles, specs, i, rate)
                step["server_rss_kib"] = read_rss_kib(opts.server_pid)
                steps.append(step)
                progress("step_done", step=step)
                if not step["ok"]:
                    # A p99 over the bound may be one noisy moment of a shared machine: try
                    # the same rate once more. A lost message is never noise: stop.
                    if opts.saturate and not retried and step["lost"] == 0:
                        retried = True
                        step["retried"] = True
                        continue
                    break
                retried = False
                rate = _next_rate(rate, opts.step_factor)
        else:
            progress("hold", duration=opts.duration)
            await asyncio.sleep(opts.duration)
        result["knee"] = find_knee(steps) if opts.saturate else None
        if opts.at_knee is not None and result["knee"] is not None:
            number = steps[-1]["step"] + 1
            result["at_knee"] = await _at_knee(
                opts, handles, specs, number, result["knee"], progress
            )
        result["warnings"] = run_warnings(opts, result)
        await asyncio.gather(*(h.call("close") for h in handles))
    finally:
        for h in handles:
            h.stop()
        executor.shutdown(wait=False, cancel_futures=True)
    return result


async def _at_knee(
    opts: BenchOptions,
    handles: list[Any],
    specs: list[ClientSpec],
    number: int,
    knee: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """One step at ``opts.at_knee`` of the knee's rate, on the same connections, once the
    server has delivered what the saturation's last step left behind."""
    assert opts.at_knee is not None
    await asyncio.gather(*(h.call("quiet", period=0.5, timeout=30) for h in handles))
    rate = round(knee["rate"] * opts.at_knee, 2)
    progress("step", step=number, rate=rate, duration=opts.duration, drain=opts.drain)
    step = await _run_step(opts, handles, specs, number, rate)
    step["server_rss_kib"] = read_rss_kib(opts.server_pid)
    progress("step_done", step=step)
    return {"fraction": opts.at_knee, "knee_rate": knee["rate"], "rate": rate, "step": step}


def _nothing_connected(failures: dict[str, int]) -> ChatctlError:
    """The error for a run where no connection opened, with the status that says why."""
    text = f"no connection succeeded: {failures}"
    if failures and all(f in ("HTTP 401", "HTTP 403") for f in failures):
        return AuthError(text + " (see --token, --secret-file)")
    if failures and not any(f.startswith("HTTP ") for f in failures):
        return ConnectError(text)
    return BenchError(text)


def _next_rate(rate: float, factor: float) -> float:
    nxt = rate * factor
    return float(math.ceil(nxt)) if nxt >= 10 else round(nxt, 2)


async def _run_step(
    opts: BenchOptions,
    handles: list[Any],
    specs: list[ClientSpec],
    step: int,
    rate: float,
    *,
    duration: float | None = None,
) -> dict[str, Any]:
    if duration is not None:
        opts = replace(opts, duration=duration)
    start_at = time.time() + STEP_LEAD
    server_cpu = asyncio.create_task(
        server_cpu_seconds(opts.server_pid, start_at, start_at + opts.duration)
    )
    loop_lag = asyncio.create_task(
        server_loop_lag(opts.servers[0], start_at, start_at + opts.duration)
    )
    sends = await asyncio.gather(
        *(
            h.call(
                "send",
                step=step,
                rate=rate,
                duration=opts.duration,
                start_at=start_at,
                size=opts.size,
            )
            for h in handles
        )
    )
    sent: dict[int, int] = {}
    for s in sends:
        sent.update(s["sent"])
    deadline = max(time.time(), start_at + opts.duration) + opts.drain
    drains = await asyncio.gather(*(h.call("drain", sent=sent, deadline=deadline) for h in handles))

    room_of = {s.index: s.room for s in specs}
    receivers: list[int] = []
    pairs: list[PairCounts] = []
    latencies = array("d")
    counters: Counter[str] = Counter()
    last_delivery = 0.0
    for d in drains:
        receivers += d["receivers"]
        pairs += d["pairs"]
        latencies.frombytes(d["latencies"])
        counters.update(d["counters"])
        last_delivery = max(last_delivery, d["last_delivery"])
    acc = account(sent, room_of, receivers, pairs)
    lat = summarize(latencies)
    lat_ms = {k: (v if k == "count" else round(v * 1000, 3)) for k, v in lat.items()}
    window = max(opts.duration, last_delivery - start_at)
    p99 = lat["p99"]
    cpu = await server_cpu
    lag = await loop_lag
    server: dict[str, Any] | None = None
    if cpu is not None:
        server = {
            "cpu": round(cpu / opts.duration, 3),  # share of one core while sending
            "cpu_us_per_delivery": round(cpu * 1e6 / acc.delivered, 2) if acc.delivered else None,
        }
    if lag is not None:
        server = {**(server or {}), "loop_lag": lag}
    return {
        "step": step,
        "rate": rate,
        "senders": len(sent),
        "receivers": len(receivers),
        "duration": opts.duration,
        "sent": acc.sent,
        "sent_per_s": round(acc.sent / opts.duration, 1),
        "expected": acc.expected,
        "delivered": acc.delivered,
        "offered_per_s": round(acc.expected / opts.duration, 1),
        "delivered_per_s": round(acc.delivered / window, 1),
        "lost": acc.lost,
        "loss_ratio": round(acc.loss_ratio, 6),
        "duplicates": acc.duplicates,
        "out_of_order": acc.out_of_order,
        "late": counters.pop("late", 0),
        "unmarked": counters.pop("unmarked", 0),
        "disconnects": sum(len(d["dropped_receivers"]) for d in drains),
        "acks": counters.pop("acks", 0),
        "send_failures": counters.pop("send_failures", 0),
        "other_frames": dict(counters),
        "send_lag_ms": round(max(s["send_lag"] for s in sends) * 1000, 1),
        "latency_ms": lat_ms,
        "client_cpu": [round(d["cpu"], 3) for d in drains],
        "server": server,
        "ok": acc.lost == 0 and not math.isnan(p99) and p99 <= opts.p99_bound,
    }
