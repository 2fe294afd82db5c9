"""Measure chatctl and the reference server side by side, in ONE run, and print the ratios.

For every scenario and every repetition, each target gets a fresh server process on a free
port, ``chatctl bench --json`` runs against it, and the server is stopped; targets alternate
(A B A B …) so the noise of a shared machine falls on both alike.

    PYTHONPATH=src python bench/compare.py fanout rooms idle --repeat 2 --out bench/results/run.json

Targets: ``chatctl`` (``chatctl serve`` with its defaults: the SQLite broker, in a fresh data
directory each run), ``reference`` (bench/reference_server.py on asyncio), and with
``--targets`` also ``chatctl-memory`` (``--memory``), ``reference-uvloop``,
``chatctl-asyncio`` (``CHATCTL_LOOP=asyncio``), ``chatctl-memory-asyncio`` (both), and
``chatctl-before`` (``chatctl-before-memory``): ``chatctl serve`` from the ``src`` directory
given with ``--before`` (e.g. main's checkout), to measure a change before and after in one
run. ``--base`` names the target the ratios are taken against
(default ``reference``; ``--base chatctl-memory`` compares the brokers, ``--base
chatctl-before`` a change).

``--at-knee F`` (scenarios ``fanout`` and ``rooms``) measures latency at a fixed fraction of
the relay's knee instead of at one fixed rate: each round first finds the knee of
``--knee-target`` (default ``reference``) with a saturation run of the scenario on a fresh
server, then runs every target for 10 s at F times the knee's rate and reports p50/p99/max,
the server's loop lag (samples over 10 and 50 ms, the p99 bucket), its CPU per delivery, and
delivered/lost, with a table of medians (min-max) and ratios against ``--base``.
A search whose first step already fails the bound starts again from half its rate (twice at
most). ``--knee-rate R`` (or ``SCENARIO=R``, repeatable) skips the search and uses rate R
per sender.

    PYTHONPATH=src python bench/compare.py fanout rooms --at-knee 0.6 --repeat 3 \
        --targets chatctl,chatctl-memory,reference --out bench/results/knee60.json

Unknown flags go to every ``chatctl bench`` (after the scenario's own, so they win), e.g.
``--duration 5``. ``--json`` prints the whole result
(what ``--out`` writes) on stdout, and the progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: the ``src`` directory whose server the ``chatctl-before`` target runs (``--before``)
BEFORE = HERE.parent / "src"

SCENARIOS: dict[str, list[str]] = {
    # 1 room x 500 clients, 1 sender, 64-byte messages: raise the rate to the knee.
    "fanout": [
        "--rooms",
        "1",
        "--clients",
        "500",
        "--senders",
        "1",
        "--size",
        "64",
        "--saturate",
        "--rate",
        "30",
        "--step-factor",
        "1.1",
        "--max-steps",
        "30",
        "--duration",
        "3",
        "--drain",
        "2",
        "--p99-bound",
        "100",
    ],
    # The same fan-out at one fixed rate (50,000 deliveries/s offered): server CPU per delivery.
    "fanout-cpu": [
        "--rooms",
        "1",
        "--clients",
        "500",
        "--senders",
        "1",
        "--size",
        "64",
        "--rate",
        "100",
        "--duration",
        "10",
        "--drain",
        "2",
    ],
    # 50 rooms x 20 clients, 2 senders per room at 5 msg/s.
    "rooms": [
        "--rooms",
        "50",
        "--clients",
        "20",
        "--senders",
        "2",
        "--rate",
        "5",
        "--duration",
        "10",
        "--drain",
        "2",
    ],
    # The same after 3 s of unrecorded traffic at the same rate (steady state).
    "rooms-warm": [
        "--rooms",
        "50",
        "--clients",
        "20",
        "--senders",
        "2",
        "--rate",
        "5",
        "--duration",
        "10",
        "--drain",
        "2",
        "--warmup",
        "3",
    ],
    # 2,000 idle connections opened at once (2,000 users, 50 to a room), held 2 s: memory
    # per connection.
    "idle": ["--rooms", "0", "--idle", "2000", "--duration", "2"],
    # Connect storm: 2,000 clients at once, 2,000 users each with its own JWT, 20 per room.
    "storm": ["--rooms", "100", "--clients", "20", "--senders", "0", "--duration", "1"],
    # Reconnect storm of one big room: 2,000 users of one room (a restarted node's clients)
    # all at once: the time until every client has its welcome, and the frames it cost.
    "room-storm": [
        "--rooms",
        "1",
        "--clients",
        "2000",
        "--senders",
        "0",
        "--duration",
        "1",
        "--connect-timeout",
        "300",
    ],
    # 1,000 idle connections, all in one room: memory per connection in a big room.
    "idle-room": ["--rooms", "1", "--clients", "1000", "--senders", "0", "--duration", "2"],
}


#: ``--at-knee``: per scenario, the saturation run that finds the knee, and the run every
#: target gets at a fraction of it (``--rate`` is added).
KNEE_SCENARIOS: dict[str, tuple[list[str], list[str]]] = {
    "fanout": (
        SCENARIOS["fanout"],
        [
            "--rooms",
            "1",
            "--clients",
            "500",
            "--senders",
            "1",
            "--size",
            "64",
            "--duration",
            "10",
            "--drain",
            "2",
        ],
    ),
    "rooms": (
        [
            "--rooms",
            "50",
            "--clients",
            "20",
            "--senders",
            "2",
            "--saturate",
            "--rate",
            "5",
            "--step-factor",
            "1.2",
            "--max-steps",
            "20",
            "--duration",
            "3",
            "--drain",
            "2",
            "--p99-bound",
            "100",
        ],
        ["--rooms", "50", "--clients", "20", "--senders", "2", "--duration", "10", "--drain", "2"],
    ),
}

#: the columns of the ``--at-knee`` table: headline key, label
AT_KNEE_COLUMNS = [
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("max_ms", "max ms"),
    ("lag_over_10ms", "lag>10ms"),
    ("lag_over_50ms", "lag>50ms"),
    ("lag_p99_le_ms", "lag p99<="),
    ("server_cpu_us_per_delivery", "µs/deliv"),
    ("delivered_per_s", "delivered/s"),
    ("lost", "lost"),
]
#: the columns whose ratio against --base is printed
RATIO_COLUMNS = ["p50_ms", "p99_ms", "max_ms", "server_cpu_us_per_delivery"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that keeps the child (and its children) on ``cpus``; None: anywhere."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_server(
    target: str, port: int, env: dict[str, str], log: Path, cpus: set[int] | None = None
) -> subprocess.Popen[bytes]:
    if target.startswith("chatctl"):
        cmd = [sys.executable, "-m", "chatctl", "serve", "--port", str(port)]
        env = dict(env)
        env["CHATCTL_DATA_DIR"] = tempfile.mkdtemp(prefix="data-", dir=log.parent)
        if target.endswith("-asyncio"):
            env["CHATCTL_LOOP"] = "asyncio"
        if "-memory" in target:
            cmd.append("--memory")
        if target.startswith("chatctl-before"):  # the server of another checkout: --before SRC
            env["PYTHONPATH"] = str(BEFORE)
    else:
        cmd = [sys.executable, str(HERE / "reference_server.py"), "--port", str(port)]
        if target == "reference-uvloop":
            cmd.append("--uvloop")
    with log.open("wb") as f:
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=f, preexec_fn=pinned(cpus)
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "listening on" in log.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{target} did not start: {log.read_text(errors='replace')}")


def run_one(
    target: str,
    scenario: str,
    args: argparse.Namespace,
    env: dict[str, str],
    tmp: Path,
    bench_args: list[str] | None = None,
) -> dict[str, Any]:
    """A fresh ``target`` server, ``chatctl bench --json`` with the scenario's flags (or
    ``bench_args``) against it, the server stopped; the result with the command and the
    load average at the start."""
    port = free_port()
    load = os.getloadavg()
    server_cpus, client_cpus = ({0}, {1}) if args.pin else (None, None)
    proc = start_server(target, port, env, tmp / f"{target}-{scenario}.log", server_cpus)
    try:
        time.sleep(0.5)
        cmd = [
            sys.executable,
            "-m",
            "chatctl",
            "bench",
            "--server",
            f"ws://127.0.0.1:{port}",
            "--procs",
            str(args.procs),
            "--server-pid",
            str(proc.pid),
            "--json",
            *(SCENARIOS[scenario] if bench_args is None else bench_args),
            *args.extra,
        ]
        out = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            preexec_fn=pinned(client_cpus),
        )
        if not out.stdout.strip():
            raise RuntimeError(f"bench failed against {target}: {out.stderr}")
        result: dict[str, Any] = json.loads(out.stdout)
        result["command"] = " ".join(["chatctl", *cmd[3:]])
        result["load_average"] = [round(x, 2) for x in load]
        if args.pin:
            result["pinned"] = {
                "server_cpus": sorted(server_cpus or ()),
                "client_cpus": sorted(client_cpus or ()),
            }
        return result
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def headline(scenario: str, r: dict[str, Any]) -> dict[str, Any]:
    """The figures a scenario is judged by."""
    c = r["connect"]
    mem = (r.get("memory") or {}).get("per_connection_kib")
    if scenario == "fanout":
        knee = r.get("knee") or {}
        return {
            "knee_deliveries_per_s": knee.get("delivered_per_s"),
            "knee_rate": knee.get("rate"),
            "knee_p99_ms": knee.get("p99_ms"),
            "bound_reached": knee.get("reached"),
            "steps": len(r["steps"]),
            "client_cpu_at_knee": _knee_cpu(r),
        }
    if scenario.startswith(("rooms", "fanout-cpu")):
        return step_headline(r["steps"][0])
    return {
        "kib_per_connection": mem,
        "connected": c["connected"],
        "failed": c["failed"],
        "connect_wall_s": c["wall_s"],
        "connect_p50_ms": c["time_ms"].get("p50"),
        "connect_p99_ms": c["time_ms"].get("p99"),
        "connect_max_ms": c["time_ms"].get("max"),
        "welcomed": c.get("welcomed"),
        "all_welcomed_ms": (c.get("welcome_ms") or {}).get("max"),
        "settle_s": c.get("settle_s"),
        "frames": c.get("frames"),
    }


def step_headline(s: dict[str, Any]) -> dict[str, Any]:
    """The figures of one fixed-rate step: latency, delivery, the server's CPU and loop lag."""
    lat = s["latency_ms"]
    server = s.get("server") or {}
    lag = server.get("loop_lag") or {}
    return {
        "p50_ms": lat["p50"],
        "p90_ms": lat["p90"],
        "p99_ms": lat["p99"],
        "max_ms": lat["max"],
        "offered_per_s": s["offered_per_s"],
        "delivered_per_s": s["delivered_per_s"],
        "delivered": s["delivered"],
        "lost": s["lost"],
        "client_cpu": s["client_cpu"],
        "server_cpu": server.get("cpu"),
        "server_cpu_us_per_delivery": server.get("cpu_us_per_delivery"),
        "loop_lag": server.get("loop_lag"),
        "lag_samples": lag.get("samples"),
        "lag_over_10ms": lag.get("over_10ms"),
        "lag_over_50ms": lag.get("over_50ms"),
        "lag_p99_le_ms": lag.get("p99_le_ms"),
    }


def _knee_cpu(r: dict[str, Any]) -> list[float] | None:
    knee = r.get("knee")
    if not knee:
        return None
    cpu: list[float] = next(s["client_cpu"] for s in r["steps"] if s["step"] == knee["step"])
    return cpu


KEY = {
    "fanout": ("knee_deliveries_per_s", "higher"),
    "fanout-cpu": ("server_cpu_us_per_delivery", "lower"),
    "rooms": ("p99_ms", "lower"),
    "rooms-warm": ("p99_ms", "lower"),
    "idle": ("kib_per_connection", "lower"),
    "storm": ("connect_wall_s", "lower"),
    "room-storm": ("all_welcomed_ms", "lower"),
    "idle-room": ("kib_per_connection", "lower"),
}


def parse_knee_rates(values: list[str], scenarios: list[str]) -> dict[str, float]:
    """``--knee-rate``: ``R`` (every scenario) or ``SCENARIO=R``."""
    out: dict[str, float] = {}
    for v in values:
        name, sep, rate = v.rpartition("=")
        for scenario in [name] if sep else scenarios:
            out[scenario] = float(rate)
    return out


def knee_record(target: str, r: dict[str, Any]) -> dict[str, Any] | None:
    """The knee a saturation run found, as recorded in every at-knee run of its round."""
    knee = r.get("knee")
    if knee is None:
        return None
    return {
        "target": target,
        "rate": knee["rate"],
        "delivered_per_s": knee["delivered_per_s"],
        "p99_ms": knee["p99_ms"],
        "reached": knee["reached"],
        "steps": len(r["steps"]),
    }


#: a search whose first step already failed the bound starts again from half its rate, so often
KNEE_RETRIES = 2


def search_knee(
    scenario: str,
    rep: int,
    args: argparse.Namespace,
    env: dict[str, str],
    tmp: Path,
    log: Any,
    runs: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The knee of ``--knee-target`` in this round (each search's run appended to ``runs``);
    a search whose first step failed starts again from half its rate; None if none found."""
    saturate = KNEE_SCENARIOS[scenario][0]
    bench_args = saturate
    for attempt in range(KNEE_RETRIES + 1):
        r = run_one(args.knee_target, f"{scenario}-knee", args, env, tmp, bench_args)
        h = headline("fanout", r)
        print(f"{scenario} #{rep + 1} knee of {args.knee_target}: {json.dumps(h)}", file=log)
        runs.append(
            {
                "scenario": scenario,
                "kind": "knee",
                "rep": rep,
                "attempt": attempt,
                "target": args.knee_target,
                "headline": h,
                "result": r,
            }
        )
        knee = knee_record(args.knee_target, r)
        if knee is not None:
            knee["start_rate"] = r["steps"][0]["rate"]
            return knee
        if not r["steps"]:
            break
        first = r["steps"][0]["rate"]
        print(f"    no knee: the first step (rate {first:g}) failed the bound", file=log)
        bench_args = [*saturate, "--rate", f"{round(first / 2, 2):g}"]
    print(f"    no knee found: round {rep + 1} skipped", file=log)
    return None


def run_at_knee(
    args: argparse.Namespace, targets: list[str], env: dict[str, str], tmp: Path, log: Any
) -> list[dict[str, Any]]:
    """Every round of every scenario: the knee (found, or ``--knee-rate``), then each target
    at ``--at-knee`` of its rate."""
    given = parse_knee_rates(args.knee_rate, args.scenarios)
    runs: list[dict[str, Any]] = []
    for scenario in args.scenarios:
        fixed = KNEE_SCENARIOS[scenario][1]
        for rep in range(args.repeat):
            if scenario in given:
                knee: dict[str, Any] | None = {"given": True, "rate": given[scenario]}
            else:
                knee = search_knee(scenario, rep, args, env, tmp, log, runs)
            if knee is None:
                continue
            rate = round(args.at_knee * knee["rate"], 2)
            # each round starts from another target: the first one after a knee search runs
            # on a machine still busy from it (p99 up to 4x at 50 x 20, 2026-12-06)
            shift = rep % len(targets)
            for target in targets[shift:] + targets[:shift]:
                bench_args = [*fixed, "--rate", f"{rate:g}"]
                r = run_one(target, f"{scenario}-at-knee", args, env, tmp, bench_args)
                h = {"knee_rate": knee["rate"], "rate": rate, **step_headline(r["steps"][0])}
                line = {k: h[k] for k in ("rate", *(c for c, _ in AT_KNEE_COLUMNS))}
                print(
                    f"{scenario}@{args.at_knee:g} #{rep + 1} {target:15s} {json.dumps(line)}",
                    file=log,
                )
                for w in r.get("warnings", []):
                    print(f"    warning: {w}", file=log)
                runs.append(
                    {
                        "scenario": scenario,
                        "kind": "at-knee",
                        "rep": rep,
                        "target": target,
                        "fraction": args.at_knee,
                        "knee": knee,
                        "headline": h,
                        "result": r,
                    }
                )
    return runs


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def at_knee_summary(
    args: argparse.Namespace, targets: list[str], runs: list[dict[str, Any]], log: Any
) -> dict[str, Any]:
    """Per scenario: the knees, and per target and column the median, min and max over the
    rounds, with the medians' ratios against ``--base``; printed as a table."""
    summary: dict[str, Any] = {}
    for scenario in args.scenarios:
        mine = [x for x in runs if x["scenario"] == scenario and x["kind"] == "at-knee"]
        knees = [x["knee"] for x in mine if x["target"] == targets[0]]
        table: dict[str, Any] = {}
        for target in targets:
            cols: dict[str, Any] = {}
            for key, _ in AT_KNEE_COLUMNS:
                vals = [
                    x["headline"][key]
                    for x in mine
                    if x["target"] == target and x["headline"][key] is not None
                ]
                cols[key] = {
                    "median": statistics.median(vals) if vals else None,
                    "min": min(vals) if vals else None,
                    "max": max(vals) if vals else None,
                    "rounds": vals,
                }
            table[target] = cols
        ratios: dict[str, Any] = {}
        base = table.get(args.base)
        for target in targets:
            if base is None or target == args.base:
                continue
            ratios[target] = {}
            for key in RATIO_COLUMNS:
                a, b = table[target][key]["median"], base[key]["median"]
                ratios[target][key] = round(a / b, 3) if a is not None and b else None
        summary[scenario] = {
            "fraction": args.at_knee,
            "knee_target": args.knee_target,
            "knees": knees,
            "median": table,
            "ratio_to_base": {"base": args.base, **ratios},
        }
        rates = ", ".join(f"{k['rate']:g}" for k in knees)
        found = ", ".join(
            f"{_fmt(k.get('delivered_per_s'))}/s" for k in knees if not k.get("given")
        )
        print(
            f"\n{scenario} at {args.at_knee:g} of the knee of {args.knee_target}: knee rate per "
            f"sender by round {rates}" + (f" ({found} delivered)" if found else " (given)"),
            file=log,
        )
        print("median (min-max) over the rounds", file=log)
        rows = [["target", *(label for _, label in AT_KNEE_COLUMNS)]]
        for target in targets:
            row = [target]
            for key, _ in AT_KNEE_COLUMNS:
                c = table[target][key]
                cell = _fmt(c["median"])
                if c["median"] is not None and len(c["rounds"]) > 1:
                    cell += f" ({_fmt(c['min'])}-{_fmt(c['max'])})"
                row.append(cell)
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            first = r[0].ljust(widths[0])
            print(
                first + "".join(f"  {c:>{w}}" for c, w in zip(r[1:], widths[1:], strict=True)),
                file=log,
            )
        for target, rs in ratios.items():
            parts = ", ".join(f"{k} {_fmt(v)}" for k, v in rs.items())
            print(f"{target}/{args.base}: {parts}", file=log)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="bench flags of each scenario: "
        + "; ".join(f"{k}: {' '.join(v)}" for k, v in SCENARIOS.items()),
    )
    parser.add_argument(
        "scenarios", nargs="*", default=["fanout", "rooms", "idle"], choices=sorted(SCENARIOS)
    )
    parser.add_argument("--targets", default="chatctl,reference")
    parser.add_argument("--base", default="reference", help="the target ratios are taken against")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the server on CPU 0, the load client (all its processes) on CPU 1: on a 2-core "
        "machine they otherwise take turns on both, and the server's latency is the client's",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON (progress on stderr)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="the src directory of the checkout the chatctl-before target runs (e.g. main's)",
    )
    parser.add_argument(
        "--at-knee",
        type=float,
        metavar="F",
        help="run every target at F times the knee rate of --knee-target, found each round "
        "(scenarios fanout, rooms)",
    )
    parser.add_argument(
        "--knee-target", default="reference", help="whose knee --at-knee takes (a target)"
    )
    parser.add_argument(
        "--knee-rate",
        action="append",
        default=[],
        metavar="[SCENARIO=]R",
        help="with --at-knee: the knee's rate per sender, not searched for",
    )
    args, extra = parser.parse_known_args()  # unknown flags go to every chatctl bench
    args.extra = [a for a in extra if a != "--"]
    targets = args.targets.split(",")
    if args.at_knee is not None:
        if not 0 < args.at_knee <= 1:
            parser.error("--at-knee takes a fraction in (0, 1]")
        wrong = [s for s in args.scenarios if s not in KNEE_SCENARIOS]
        if wrong:
            parser.error(f"--at-knee runs the scenarios {sorted(KNEE_SCENARIOS)}, not {wrong}")
    elif args.knee_rate:
        parser.error("--knee-rate goes with --at-knee")
    if args.before is not None:
        global BEFORE
        BEFORE = args.before.resolve()
    log = sys.stderr if args.json else sys.stdout
    env = dict(os.environ)
    env["CHATCTL_SECRET"] = secrets.token_urlsafe(32)
    env.pop("CHATCTL_TOKEN", None)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="chatctl-compare-") as tmp:
        if args.at_knee is not None:
            runs = run_at_knee(args, targets, env, Path(tmp), log)
        else:
            for scenario in args.scenarios:
                for rep in range(args.repeat):
                    for target in targets:
                        r = run_one(target, scenario, args, env, Path(tmp))
                        h = headline(scenario, r)
                        print(f"{scenario} #{rep + 1} {target:17s} {json.dumps(h)}", file=log)
                        for w in r.get("warnings", []):
                            print(f"    warning: {w}", file=log)
                        runs.append(
                            {
                                "scenario": scenario,
                                "rep": rep,
                                "target": target,
                                "headline": h,
                                "result": r,
                            }
                        )
    if args.at_knee is not None:
        summary = at_knee_summary(args, targets, runs, log)
    else:
        summary = fixed_summary(args, targets, runs, log)
    output = {"summary": summary, "runs": runs}
    if args.out:
        args.out.write_text(json.dumps(output, indent=1))
    if args.json:
        print(json.dumps(output))


def fixed_summary(
    args: argparse.Namespace, targets: list[str], runs: list[dict[str, Any]], log: Any
) -> dict[str, Any]:
    """Per scenario: the median and best of its key figure per target, and the ratios."""
    print(file=log)
    summary = {}
    for scenario in args.scenarios:
        key, better = KEY[scenario]
        meds: dict[str, Any] = {}
        bests: dict[str, Any] = {}
        for target in targets:
            vals = [
                x["headline"][key]
                for x in runs
                if x["scenario"] == scenario
                and x["target"] == target
                and x["headline"][key] is not None
            ]
            meds[target] = statistics.median(vals) if vals else None
            bests[target] = (max if better == "higher" else min)(vals) if vals else None
        ref = args.base
        base = meds.get(ref)
        line = f"{scenario}: median {key} ({better} is better): "
        line += ", ".join(f"{t} {v}" for t, v in meds.items())
        if base and meds.get("chatctl") is not None:
            line += f"; chatctl/{ref} = {meds['chatctl'] / base:.3f}"
        best = bests.get(ref)
        if best and bests.get("chatctl") is not None:
            line += f"; best chatctl {bests['chatctl']} / {ref} {best} = "
            line += f"{bests['chatctl'] / best:.3f}"
        print(line, file=log)
        summary[scenario] = {"key": key, "better": better, "median": meds, "best": bests}
    return summary


if __name__ == "__main__":
    main()
