"""Figures for the SQLite default and retention (docs/performance.md, "Durable by default").

Every figure is measured side by side in one run: the SQLite default against ``--memory``
(and Redis for retention), alternating, on fresh servers and data directories.

    PYTHONPATH=src python bench/durability.py send startup idle --repeat 2

send     ``chatctl send`` of 100,000 lines, limits off: wall time, acked lines/s and the
         server's CPU time; ``--before OLD/src`` adds a SQLite server run from another tree
         (e.g. a checkout of main) to each round, and a summary of medians and ratios
startup  ``chatctl serve`` until "listening on", with 1,000 rooms x 1,000 messages in the
         database, an empty one and --memory; then the first welcome of a stored room
idle     20,000 rooms posted to once (one connection each), left idle past --history-ttl
         (100 s), twice: server RSS, rooms held (/metrics), Redis dbsize and used_memory,
         the database's size, at the start, after each wave and after each wave's TTL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from chatctl.broker.rooms import new_epoch
from chatctl.broker.sqlite import SQLiteBroker
from chatctl.broker.sqlite.schema import open_database
from chatctl.tokens.mint import mint

SECRET = secrets.token_urlsafe(32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    e["CHATCTL_SECRET"] = SECRET
    return e


class Server:
    def __init__(self, *args: str, data_dir: Path | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        e = env()
        if data_dir is not None:
            e["CHATCTL_DATA_DIR"] = str(data_dir)
        self.log = tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log", delete=False)  # noqa: SIM115
        cmd = [sys.executable, "-m", "chatctl", "serve", "--port", str(self.port), *args]
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=e, stdout=subprocess.DEVNULL, stderr=self.log)
        while "listening on" not in Path(self.log.name).read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text())
            time.sleep(0.005)
        self.startup = time.perf_counter() - self.started

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        os.unlink(self.log.name)


# --------------------------------------------------------------------------- send


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_send(repeat: int, tmp: Path, before: Path | None = None) -> list[dict[str, Any]]:
    lines = tmp / "100k.txt"
    lines.write_text("".join(f"line {i}\n" for i in range(100_000)))
    targets = ["memory", "sqlite"] + (["sqlite-before"] if before is not None else [])
    out = []
    for rep in range(repeat):
        for target in targets:
            flags = ["--rate-limit", "0", "--user-rate-limit", "0"]
            pythonpath = os.environ.get("PYTHONPATH")
            if target == "sqlite-before":
                os.environ["PYTHONPATH"] = str(before)
            try:
                srv = (
                    Server(*flags, "--memory")
                    if target == "memory"
                    else Server(*flags, data_dir=tmp / f"send-{target}-{rep}")
                )
            finally:
                if pythonpath is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = pythonpath
            e = env()
            e["CHATCTL_SERVER"] = f"ws://127.0.0.1:{srv.port}"
            e["CHATCTL_TOKEN"] = mint(SECRET.encode(), "bench", ttl=3600)
            started = time.perf_counter()
            with lines.open("rb") as f:
                rc = subprocess.run(
                    [sys.executable, "-m", "chatctl", "send", "general"], stdin=f, env=e
                ).returncode
            wall = time.perf_counter() - started
            cpu = cpu_seconds(srv.proc.pid)
            srv.stop()
            r: dict[str, Any] = {"target": target, "rep": rep, "seconds": round(wall, 2)}
            r["exit"] = rc
            r["lines_per_s"] = round(100_000 / wall)
            r["server_cpu_s"] = round(cpu, 2)
            print("send", json.dumps(r), flush=True)
            out.append(r)
    for target in targets[1:]:
        ratios = [
            s["lines_per_s"] / m["lines_per_s"]
            for s, m in zip(
                [r for r in out if r["target"] == target],
                [r for r in out if r["target"] == "memory"],
                strict=True,
            )
        ]
        summary: dict[str, Any] = {
            "target": target,
            "ratio_to_memory": [round(x, 2) for x in ratios],
        }
        summary["median_ratio"] = round(statistics.median(ratios), 2)
        for key in ("lines_per_s", "server_cpu_s"):
            values = [r[key] for r in out if r["target"] == target]
            summary[key] = [statistics.median(values), min(values), max(values)]
        print("send summary", json.dumps(summary), flush=True)
    return out


# --------------------------------------------------------------------------- startup


def build_database(path: Path, rooms: int, per_room: int) -> None:
    db = open_database(path / "chatctl.db", synchronous="off")
    now = time.time()
    db.execute("BEGIN")
    for rid in range(1, rooms + 1):
        db.execute(
            "INSERT INTO rooms VALUES (?, ?, ?, ?, ?)",
            (rid, f"room{rid}", new_epoch(), per_room, now),
        )
        db.executemany(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)",
            (
                (rid, i, "user", f"message {i} of room {rid}", now, "text", None, None)
                for i in range(1, per_room + 1)
            ),
        )
    db.execute("COMMIT")
    db.close()


async def first_welcome(port: int, room: str) -> tuple[float, int]:
    token = mint(SECRET.encode(), "reader", ttl=3600)
    started = time.perf_counter()
    async with connect(
        f"ws://127.0.0.1:{port}/ws/{room}?history=1000",
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
    ) as ws:
        welcome = json.loads(await ws.recv())
    return time.perf_counter() - started, len(welcome["history"])


async def open_and_close(path: Path) -> None:
    broker = SQLiteBroker(path)
    await broker.start()
    await broker.close()


def bench_startup(repeat: int, tmp: Path) -> list[dict[str, Any]]:
    big = tmp / "big"
    big.mkdir()
    t = time.perf_counter()
    build_database(big, 1000, 1000)
    size = (big / "chatctl.db").stat().st_size
    print(f"startup: built 1,000 x 1,000 in {time.perf_counter() - t:.1f}s, {size >> 20} MiB")
    out = []
    for rep in range(repeat):
        t = time.perf_counter()
        asyncio.run(open_and_close(big))
        r = {"target": "broker.start()+close() in-process, 1M", "rep": rep}
        r["seconds"] = round(time.perf_counter() - t, 4)
        print("startup", json.dumps(r), flush=True)
        out.append(r)
        for target in ("sqlite-1M", "sqlite-empty", "memory"):
            if target == "memory":
                srv = Server("--memory")
            else:
                srv = Server(data_dir=big if target == "sqlite-1M" else tmp / f"empty-{rep}")
            welcome, n = asyncio.run(first_welcome(srv.port, "room500"))
            r = {
                "target": target,
                "rep": rep,
                "startup_s": round(srv.startup, 3),
                "first_welcome_ms": round(welcome * 1000, 1),
                "history": n,
                "rss_mib": round(srv.rss_mib(), 1),
            }
            srv.stop()
            print("startup", json.dumps(r), flush=True)
            out.append(r)
    return out


# --------------------------------------------------------------------------- idle rooms


async def post_rooms(port: int, rooms: int, workers: int = 20, prefix: str = "") -> float:
    tokens = [mint(SECRET.encode(), f"poster{w}", ttl=3600) for w in range(workers)]
    next_room = iter(range(rooms))

    async def worker(token: str) -> None:
        for i in next_room:
            async with connect(
                f"ws://127.0.0.1:{port}/ws/idle{prefix}{i}?presence=0&receive=0&history=0",
                additional_headers={"Authorization": f"Bearer {token}"},
            ) as ws:
                await ws.recv()
                await ws.send(json.dumps({"message": "hello", "client_id": "c1"}))
                while '"ack"' not in str(await ws.recv()):
                    pass

    started = time.perf_counter()
    await asyncio.gather(*(worker(t) for t in tokens))
    return time.perf_counter() - started


def redis_info(port: int) -> tuple[int, float]:
    import redis

    r = redis.Redis(port=port)
    mem = r.info("memory")["used_memory"] / 2**20
    return int(r.dbsize()), round(mem, 1)


def broker_rooms(port: int) -> int:
    """chatctl_broker_rooms from /metrics: rooms the server holds in memory."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for line in body.splitlines():
        if line.startswith("chatctl_broker_rooms "):
            return int(float(line.split()[1]))
    return -1


def sample(when: str, r: dict[str, Any], srv: Server, target: str, redis_port: int) -> None:
    """Record what the server (and Redis, and the database) hold now."""
    r[f"rss_{when}"] = round(srv.rss_mib(), 1)
    r[f"rooms_{when}"] = broker_rooms(srv.port)
    if target == "redis":
        r[f"dbsize_{when}"], r[f"redis_mib_{when}"] = redis_info(redis_port)
    if target == "sqlite" and srv.data_dir is not None:
        r[f"db_kib_{when}"] = round(sum(p.stat().st_size for p in srv.data_dir.iterdir()) / 1024)


def bench_idle(tmp: Path, rooms: int, ttl: float, waves: int) -> list[dict[str, Any]]:
    """Each wave posts once to ``rooms`` new rooms, then waits past the TTL."""
    out = []
    redis_port = free_port()
    redis_proc = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    try:
        for target in ("memory", "sqlite", "redis"):
            flags = ["--history-ttl", f"{ttl}s", "--max-user-rooms", "0"]
            if target == "memory":
                srv = Server(*flags, "--memory")
            elif target == "redis":
                srv = Server(*flags, "--redis-url", f"redis://127.0.0.1:{redis_port}/0")
            else:
                srv = Server(*flags, data_dir=tmp / "idle")

            time.sleep(1)
            r: dict[str, Any] = {"target": target}
            sample("start", r, srv, target, redis_port)
            for wave in range(1, waves + 1):
                wall = asyncio.run(post_rooms(srv.port, rooms, prefix=f"w{wave}-"))
                r[f"rooms_per_s_{wave}"] = round(rooms / wall)
                sample(f"posted{wave}", r, srv, target, redis_port)
                time.sleep(ttl * 1.1 + min(ttl / 10, 60) + 2)
                sample(f"idle{wave}", r, srv, target, redis_port)
                print("idle", json.dumps(r), flush=True)
            srv.stop()
            out.append(r)
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", nargs="+", choices=["send", "startup", "idle"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=20_000)
    parser.add_argument("--ttl", type=float, default=100.0)
    parser.add_argument("--waves", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--before", type=Path, help="send: also a SQLite server from this src/")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="chatctl-durability-") as d:
        tmp = Path(d)
        if "send" in args.figures:
            results["send"] = bench_send(args.repeat, tmp, args.before)
        if "startup" in args.figures:
            results["startup"] = bench_startup(args.repeat, tmp)
        if "idle" in args.figures:
            results["idle"] = bench_idle(tmp, args.rooms, args.ttl, args.waves)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
