"""Measure chatctl and the reference server side by side, in ONE run, and print the ratios.

For every scenario and every repetition, each target gets a fresh server process on a free
port, ``chatctl bench --json`` runs against it, and the server is stopped; targets alternate
(A B A B …) so the noise of a shared machine falls on both alike.

    PYTHONPATH=src python bench/compare.py fanout rooms idle --repeat 2 --out bench/results/run.json

Targets: ``chatctl`` (``chatctl serve`` with its defaults: the SQLite broker, in a fresh data
directory each run), ``reference`` (bench/reference_server.py on asyncio), and with
``--targets`` also ``chatctl-memory`` (``--memory``), ``reference-uvloop``,
``chatctl-asyncio`` (``CHATCTL_LOOP=asyncio``) and ``chatctl-before``: ``chatctl serve`` from
the ``src`` directory given with ``--before`` (e.g. main's checkout), to measure a change
before and after in one run. ``--base`` names the target the ratios are taken against
(default ``reference``; ``--base chatctl-memory`` compares the brokers, ``--base
chatctl-before`` a change).
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(target: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if target.startswith("chatctl"):
        cmd = [sys.executable, "-m", "chatctl", "serve", "--port", str(port)]
        env = dict(env)
        env["CHATCTL_DATA_DIR"] = tempfile.mkdtemp(prefix="data-", dir=log.parent)
        if target == "chatctl-asyncio":
            env["CHATCTL_LOOP"] = "asyncio"
        if target == "chatctl-memory":
            cmd.append("--memory")
        if target == "chatctl-before":  # the server of another checkout: --before SRC
            env["PYTHONPATH"] = str(BEFORE)
    else:
        cmd = [sys.executable, str(HERE / "reference_server.py"), "--port", str(port)]
        if target == "reference-uvloop":
            cmd.append("--uvloop")
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=f)
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
    target: str, scenario: str, args: argparse.Namespace, env: dict[str, str], tmp: Path
) -> dict[str, Any]:
    port = free_port()
    proc = start_server(target, port, env, tmp / f"{target}-{scenario}.log")
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
            *SCENARIOS[scenario],
            *args.extra,
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if not out.stdout.strip():
            raise RuntimeError(f"bench failed against {target}: {out.stderr}")
        result: dict[str, Any] = json.loads(out.stdout)
        result["command"] = " ".join(["chatctl", *cmd[3:]])
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
        s = r["steps"][0]
        lat = s["latency_ms"]
        server = s.get("server") or {}
        return {
            "p50_ms": lat["p50"],
            "p90_ms": lat["p90"],
            "p99_ms": lat["p99"],
            "max_ms": lat["max"],
            "delivered_per_s": s["delivered_per_s"],
            "lost": s["lost"],
            "client_cpu": s["client_cpu"],
            "server_cpu": server.get("cpu"),
            "server_cpu_us_per_delivery": server.get("cpu_us_per_delivery"),
            "loop_lag": server.get("loop_lag"),
        }
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", default=["fanout", "rooms", "idle"], choices=sorted(SCENARIOS)
    )
    parser.add_argument("--targets", default="chatctl,reference")
    parser.add_argument("--base", default="reference", help="the target ratios are taken against")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--before",
        type=Path,
        help="the src directory of the checkout the chatctl-before target runs (e.g. main's)",
    )
    args, extra = parser.parse_known_args()  # unknown flags go to every chatctl bench
    args.extra = [a for a in extra if a != "--"]
    targets = args.targets.split(",")
    if args.before is not None:
        global BEFORE
        BEFORE = args.before.resolve()
    env = dict(os.environ)
    env["CHATCTL_SECRET"] = secrets.token_urlsafe(32)
    env.pop("CHATCTL_TOKEN", None)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="chatctl-compare-") as tmp:
        for scenario in args.scenarios:
            for rep in range(args.repeat):
                for target in targets:
                    r = run_one(target, scenario, args, env, Path(tmp))
                    h = headline(scenario, r)
                    print(f"{scenario} #{rep + 1} {target:17s} {json.dumps(h)}", flush=True)
                    for w in r.get("warnings", []):
                        print(f"    warning: {w}", flush=True)
                    runs.append(
                        {
                            "scenario": scenario,
                            "rep": rep,
                            "target": target,
                            "headline": h,
                            "result": r,
                        }
                    )
    print()
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
        print(line)
        summary[scenario] = {"key": key, "better": better, "median": meds, "best": bests}
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
