"""The parts of a ``chatctl bench`` result computed from the workers' records: the connect
burst, the server's memory per connection, the knee of a saturation run, and the warnings."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from chatctl.bench.options import BenchOptions
from chatctl.bench.stats import summarize

#: A load-client process using more than this share of a core is probably the bottleneck.
CLIENT_CPU_WARN = 0.9


def connect_summary(conns: list[dict[str, Any]], attempted: int, wall: float) -> dict[str, Any]:
    times: list[float] = []
    failures: Counter[str] = Counter()
    welcomed = 0
    welcome_times: list[float] = []
    for c in conns:
        times += c["times"]
        failures.update(c["failures"])
        welcomed += c["welcomed"]
        welcome_times += c["welcome_times"]
    t = summarize(times)
    w = summarize(welcome_times)
    return {
        "attempted": attempted,
        "connected": len(times),
        "failed": attempted - len(times),
        "failures": dict(failures),
        "welcomed": welcomed,
        "wall_s": round(wall, 3),
        "time_ms": {k: round(v * 1000, 2) for k, v in t.items() if k != "count"},
        #: from the start of the connect burst to each connection's welcome; its max is the
        #: time until every client had its welcome
        "welcome_ms": {k: round(v * 1000, 2) for k, v in w.items() if k != "count"},
    }


def memory_summary(
    opts: BenchOptions, before: int | None, after: int | None, connected: int
) -> dict[str, Any] | None:
    if opts.server_pid is None:
        return None
    per = None
    if before is not None and after is not None and connected:
        per = round((after - before) / connected, 2)
    return {
        "server_pid": opts.server_pid,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "per_connection_kib": per,
    }


def find_knee(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last step that met the bound (before the step that failed twice, or with loss)."""
    good = [s for s in steps if s["ok"]]
    if not good:
        return None
    last = good[-1]
    return {
        "step": last["step"],
        "rate": last["rate"],
        "delivered_per_s": last["delivered_per_s"],
        "p99_ms": last["latency_ms"]["p99"],
        "reached": not steps[-1]["ok"],
    }


def run_warnings(opts: BenchOptions, result: dict[str, Any]) -> list[str]:
    out = []
    at_knee = result.get("at_knee")
    for step in [*result.get("steps", []), *([at_knee["step"]] if at_knee else [])]:
        busiest = max(step["client_cpu"], default=0.0)
        if busiest > CLIENT_CPU_WARN:
            out.append(
                f"step {step['step']} (rate {step['rate']:g}/s): a load process used "
                f"{busiest:.0%} of a core: the client, not the server, may be the bottleneck "
                f"(raise --procs)"
            )
        refused = {
            k.partition(":")[2]: n
            for k, n in step["other_frames"].items()
            if k in ("error:rate_limited", "error:broker_unavailable")
        }
        if refused:
            out.append(
                f"step {step['step']}: the server refused messages ({refused}); the bench does "
                "not re-send them, and a node holds back every later message of a connection "
                "until its refused one comes back (docs/protocol.md, 'Order'): raise the "
                "server's --rate-limit/--user-rate-limit above the offered rate"
            )
        interval_ms = 1000 / step["rate"]
        if step["send_lag_ms"] > max(50.0, 2 * interval_ms):
            out.append(
                f"step {step['step']}: senders fell {step['send_lag_ms']:.0f} ms behind "
                f"schedule: the offered rate was not fully reached"
            )
    if opts.saturate and result.get("knee") is not None and not result["knee"]["reached"]:
        out.append("saturation: every step met the bound; raise --rate or --max-steps")
    if opts.saturate and result.get("steps") and result.get("knee") is None:
        out.append("saturation: the first step already failed the bound; lower --rate")
        if opts.at_knee is not None:
            out.append("--at-knee: no knee, so no step at its fraction")
    client = result["client"]
    cpus = client.get("cpus") or os.cpu_count() or 1
    if client.get("shares_cpus_with_server", True) and client["procs"] >= cpus:
        out.append(
            f"{result['client']['procs']} load processes on {cpus} CPUs: "
            "they compete with the server for the same cores"
        )
    if result["connect"]["failed"]:
        out.append(
            f"{result['connect']['failed']} connections failed: {result['connect']['failures']}"
        )
    return out
