"""Same-node vs cross-node delivery latency of the Redis broker, and Redis commands per message.

Starts a private redis-server on a free port, two ``chatctl serve --redis-url`` nodes, N
clients per node in one room (each node's clients in their own process), and one sender on
node A publishing at a fixed rate. Every message carries its send time (CLOCK_MONOTONIC is
system-wide on Linux), so each receiver knows its own latency. Reports p50/p99/max for the
clients on A (same node as the sender) and on B (cross node), then the per-message delta of
``INFO commandstats``.

    PYTHONPATH=src python bench/redis_latency.py --clients 50 --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from websockets.asyncio.client import connect

from chatctl.tokens.mint import mint

SECRET = b"redis-latency-bench-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis(port: int, workdir: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def start_node(redis_url: str | None) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {**os.environ, "CHATCTL_SECRET": SECRET.decode(), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "chatctl", "serve", "--port", str(port)]
    cmd += ["--log-level", "warning", "--max-pending", "8388608"]
    if redis_url is not None:
        cmd += ["--redis-url", redis_url]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("chatctl serve did not start")


def commandstats(port: int) -> dict[str, int]:
    """Calls per command, plus ``usec:NAME`` (total microseconds) and ``cpu`` (ms, user+sys)."""
    import redis

    r = redis.Redis(port=port)
    info: dict[str, Any] = r.info("commandstats")
    stats = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}
    stats |= {"usec:" + k.removeprefix("cmdstat_"): int(v["usec"]) for k, v in info.items()}
    cpu: dict[str, Any] = r.info("cpu")
    stats["cpu"] = round((cpu["used_cpu_user"] + cpu["used_cpu_sys"]) * 1000)
    return stats


# ----------------------------------------------------------------------------- receivers


def receiver_process(
    port: int, clients: int, expect: int, ready: Any, finish: Any, out: Any
) -> None:
    latencies = asyncio.run(receive(port, clients, expect, ready, finish))
    out.put(latencies)


async def receive(port: int, clients: int, expect: int, ready: Any, finish: Any) -> list[float]:
    """Connect ``clients``, collect ``expect`` messages on each, stay connected until told."""
    latencies: list[float] = []
    url = f"ws://127.0.0.1:{port}/ws/bench?history=0"

    async def one(i: int, opened: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {mint(SECRET, f'r{port}-{i}', ttl=3600)}"}
        async with connect(url, additional_headers=headers, max_queue=None) as ws:
            await ws.recv()  # welcome
            opened.set()
            got = 0
            while got < expect:
                frame = json.loads(await ws.recv())
                if frame.get("type") != "message":
                    continue
                got += 1
                latencies.append(time.monotonic() - float(frame["message"].split()[1]))
            await asyncio.to_thread(finish.wait)

    events = [asyncio.Event() for _ in range(clients)]
    tasks = [asyncio.create_task(one(i, e)) for i, e in enumerate(events)]
    for e in events:
        await e.wait()
    ready.set()
    await asyncio.gather(*tasks)
    return latencies


async def send(
    port: int, rate: float, count: int, rport: int, client_ids: bool
) -> tuple[dict[str, int], dict[str, int]]:
    """Publish ``count`` messages at ``rate``; commandstats before the first and after the last."""
    headers = {"Authorization": f"Bearer {mint(SECRET, 'sender', ttl=3600)}"}
    async with connect(
        f"ws://127.0.0.1:{port}/ws/bench?history=0", additional_headers=headers, max_queue=None
    ) as ws:
        await ws.recv()
        before = commandstats(rport)
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = {"message": f"{i} {time.monotonic():.6f}"}
            if client_ids:
                frame["client_id"] = f"c{i}"
            await ws.send(json.dumps(frame))
        # wait for our own copy of the last message: everything was stored by then
        while True:
            got = json.loads(await ws.recv())
            if got.get("type") == "message" and got["message"].startswith(f"{count - 1} "):
                return before, commandstats(rport)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="clients per node")
    parser.add_argument("--rate", type=float, default=200, help="messages per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--client-ids", action="store_true", help="send with client ids (acks)")
    parser.add_argument(
        "--memory", action="store_true", help="baseline: ONE node with the in-memory broker"
    )
    args = parser.parse_args()
    count = int(args.rate * args.seconds)

    workdir = tempfile.mkdtemp(prefix="chatctl-bench-")
    rport = free_port()
    redis_proc = start_redis(rport, workdir)
    url = f"redis://127.0.0.1:{rport}/0"
    if args.memory:
        single = start_node(None)
        nodes = [single, single]
    else:
        nodes = [start_node(url) for _ in range(2)]
    try:
        ctx = mp.get_context("spawn")
        out: Any = ctx.Queue()
        readies = [ctx.Event() for _ in nodes]
        finish = ctx.Event()
        workers = [
            ctx.Process(
                target=receiver_process, args=(port, args.clients, count, ready, finish, out)
            )
            for (_, port), ready in zip(nodes, readies, strict=True)
        ]
        for w in workers:
            w.start()
        for r in readies:
            r.wait(60)
        before, after = asyncio.run(send(nodes[0][1], args.rate, count, rport, args.client_ids))
        finish.set()
        results = [out.get(timeout=120) for _ in workers]
        for w in workers:
            w.join(30)
    finally:
        for proc, _ in dict.fromkeys(nodes):
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    # each worker returns its own latencies; the first worker was on node A (the sender's)
    print(
        f"{args.clients} clients per node, 2 nodes, 1 room, {args.rate:g} msg/s for "
        f"{args.seconds:g} s ({count} messages, {count * args.clients * 2} deliveries)"
    )
    for label, lat in zip(("same node (A)", "cross node (B)"), results, strict=True):
        print(
            f"  {label:15} p50 {pct(lat, 50):6.2f} ms  p99 {pct(lat, 99):6.2f} ms  "
            f"max {max(lat) * 1000:6.2f} ms  mean {statistics.fmean(lat) * 1000:6.2f} ms  "
            f"n={len(lat)}"
        )
    print(f"Redis commands per published message (INFO commandstats delta / {count}):")
    calls = {n: after[n] - before.get(n, 0) for n in after if ":" not in n and n != "cpu"}
    for name in sorted(calls, key=lambda n: -calls[n]):
        if calls[name]:
            print(f"  {name:12} {calls[name] / count:6.2f}")
    if calls.get("evalsha"):
        usec = after["usec:evalsha"] - before.get("usec:evalsha", 0)
        print(f"  EVALSHA: {usec / calls['evalsha']:.1f} us inside Redis per call")
    print(f"  redis-server CPU: {(after['cpu'] - before['cpu']) * 1000 / count:.1f} us per message")


if __name__ == "__main__":
    main()
