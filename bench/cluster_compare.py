"""Two chatctl nodes on a 3-master Redis Cluster against two on one Redis, side by side in ONE
run; and ``chatctl serve --workers N`` on one Redis for per-worker scaling.

    PYTHONPATH=src python bench/cluster_compare.py fanout rooms --repeat 2 \
        --targets one-redis,cluster --out bench/results/cluster/cluster.json
    PYTHONPATH=src python bench/cluster_compare.py fanout rooms --repeat 2 \
        --targets workers-1,workers-2 --out bench/results/cluster/workers.json

The Redis servers (one plain, three cluster masters without replicas, no persistence) start
once; for every scenario, repetition and target, fresh ``chatctl serve`` processes start with
a fresh key prefix, ``chatctl bench --json`` (the scenarios of bench/compare.py) runs against
them, and they are stopped; targets alternate (A B A B …). Besides the bench's delivery
figures, each node's ``/metrics`` gives the publish latency (``chatctl_broker_publish_seconds``:
store + publish, until the ack can be sent), summed over the nodes.

Targets: ``one-redis`` (2 nodes, one Redis), ``cluster`` (2 nodes, 3-master cluster),
``workers-N`` (one ``chatctl serve --workers N`` on one Redis; the bench's clients are spread
over the workers by the kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from compare import KEY, SCENARIOS, free_port, headline

#: a light load, for publish latency on a shared machine: 10 rooms x 10 clients, one sender
#: per room at 10 msg/s (100 publishes/s, 1,000 deliveries/s)
SCENARIOS = {
    **SCENARIOS,
    "rooms-light": [
        *("--rooms", "10", "--clients", "10", "--senders", "1", "--rate", "10"),
        *("--duration", "8", "--drain", "2"),
    ],
}
KEY = {**KEY, "rooms-light": ("p99_ms", "lower")}

REDIS_ARGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


class Redis:
    """One plain redis-server and a 3-master cluster, in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.single = self._server()
        self.masters = [self._server("--cluster-enabled", "yes") for _ in range(3)]
        subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + [f"127.0.0.1:{p}" for p in self.masters]
            + ["--cluster-yes"],
            check=True,
            capture_output=True,
        )
        for port in self.masters:
            while "cluster_state:ok" not in self._cli(port, "CLUSTER", "INFO"):
                time.sleep(0.1)

    def _server(self, *args: str) -> int:
        port = free_port()
        d = self.tmp / f"redis-{port}"
        d.mkdir()
        cmd = ["redis-server", "--port", str(port), "--dir", str(d), *REDIS_ARGS, *args]
        cmd += ["--cluster-port", str(free_port())] if args else []
        self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
        while "PONG" not in self._cli(port, "PING"):
            time.sleep(0.05)
        return port

    @staticmethod
    def _cli(port: int, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True)
        return out.stdout

    def url(self, target: str) -> str:
        if target == "cluster":
            return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.masters)
        return f"redis://127.0.0.1:{self.single}/0"

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)


def start_nodes(
    target: str, redis: Redis, env: dict[str, str], tmp: Path, run: str
) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """The server processes of ``target`` and the ports the bench connects to."""
    base = [sys.executable, "-m", "chatctl", "serve", "--redis-url", redis.url(target)]
    base += ["--redis-prefix", run]
    if target.startswith("workers-"):
        port = free_port()
        cmds = [[*base, "--port", str(port), "--workers", target.removeprefix("workers-")]]
        ready = "listening on" if target == "workers-1" else "workers listening"
        ports = [port]
    else:
        ports = [free_port(), free_port()]
        cmds = [[*base, "--port", str(p)] for p in ports]
        ready = "listening on"
    procs = []
    for i, cmd in enumerate(cmds):
        log = tmp / f"{run}-{i}.log"
        with log.open("wb") as f:
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=f))
        deadline = time.monotonic() + 30
        while ready not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or procs[-1].poll() is not None:
                raise RuntimeError(f"{target} did not start: {log.read_text(errors='replace')}")
            time.sleep(0.05)
    return procs, ports


def publish_latency(ports: list[int]) -> dict[str, float | None]:
    """Mean and bucket-interpolated p50/p99 of ``chatctl_broker_publish_seconds`` over the
    nodes (ms). With workers, /metrics on the shared port is one worker's: an estimate."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        for line in text.splitlines():
            if line.startswith("chatctl_broker_publish_seconds_bucket"):
                le = line.split('le="')[1].split('"')[0]
                bound = float("inf") if le == "+Inf" else float(le)
                buckets[bound] = buckets.get(bound, 0.0) + float(line.split()[-1])
            elif line.startswith("chatctl_broker_publish_seconds_sum"):
                total += float(line.split()[-1])
            elif line.startswith("chatctl_broker_publish_seconds_count"):
                count += float(line.split()[-1])
    if not count:
        return {"publish_mean_ms": None, "publish_p50_ms": None, "publish_p99_ms": None}

    def quantile(q: float) -> float:
        rank, lower, below = q * count, 0.0, 0.0
        for bound in sorted(buckets):
            if buckets[bound] >= rank:
                if bound == float("inf"):
                    return lower * 1000
                inside = buckets[bound] - below
                return (lower + (bound - lower) * (rank - below) / max(inside, 1)) * 1000
            lower, below = bound, buckets[bound]
        return lower * 1000

    return {
        "publish_mean_ms": round(total / count * 1000, 3),
        "publish_p50_ms": round(quantile(0.5), 3),
        "publish_p99_ms": round(quantile(0.99), 3),
    }


def run_one(
    target: str, scenario: str, redis: Redis, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, Any]:
    run = f"b{secrets.token_hex(3)}"
    procs, ports = start_nodes(target, redis, env, args.tmp, run)
    try:
        time.sleep(0.5)
        cmd = [sys.executable, "-m", "chatctl", "bench", "--procs", str(args.procs), "--json"]
        for port in ports:
            cmd += ["--server", f"ws://127.0.0.1:{port}"]
        cmd += [*SCENARIOS[scenario], *args.extra]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if not out.stdout.strip():
            raise RuntimeError(f"bench failed against {target}: {out.stderr}")
        result: dict[str, Any] = json.loads(out.stdout)
        result["command"] = " ".join(["chatctl", *cmd[3:]])
        result["publish"] = publish_latency(ports)
        return result
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", default=["fanout", "rooms"])
    parser.add_argument("--targets", default="one-redis,cluster")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args, extra = parser.parse_known_args()
    args.extra = [a for a in extra if a != "--"]
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        sys.exit("needs redis-server and redis-cli")
    targets = args.targets.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on the way out
    env = dict(os.environ)
    env["CHATCTL_SECRET"] = secrets.token_urlsafe(32)
    env.pop("CHATCTL_TOKEN", None)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="chatctl-cluster-") as tmp:
        args.tmp = Path(tmp)
        redis = Redis(args.tmp)
        try:
            for scenario in args.scenarios:
                for rep in range(args.repeat):
                    for target in targets:
                        r = run_one(target, scenario, redis, args, env)
                        h = {**headline(scenario, r), **r["publish"]}
                        print(f"{scenario} #{rep + 1} {target:10s} {json.dumps(h)}", flush=True)
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
        finally:
            redis.stop()
    print()
    summary: dict[str, Any] = {}
    for scenario in args.scenarios:
        key, better = KEY[scenario]
        meds = {}
        for target in targets:
            mine = [
                x["headline"] for x in runs if x["scenario"] == scenario and x["target"] == target
            ]
            meds[target] = {
                k: statistics.median(v)
                if (v := [h[k] for h in mine if h.get(k) is not None])
                else None
                for k in (key, "publish_p50_ms", "publish_p99_ms", "publish_mean_ms")
            }
        print(f"{scenario}: medians ({key}: {better} is better): {json.dumps(meds)}")
        first, *rest = targets
        for other in rest:
            a, b = meds[first][key], meds[other][key]
            if a and b:
                print(f"    {other}/{first} {key} = {b / a:.3f}")
        summary[scenario] = {"key": key, "median": meds}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
