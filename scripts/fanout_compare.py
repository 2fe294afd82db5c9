"""Live fan-out by pub/sub vs by XREAD BLOCK: delivery latency and Redis commands per message.

One private redis-server, one publisher using chatctl's own publish script (which both XADDs
to the room's stream and PUBLISHes), and ``--nodes`` simulated nodes per method, each with
its own connection: a pub/sub subscriber, and a loop of ``XREAD BLOCK 0`` from the last id
seen. Both kinds of reader see the same messages; latency = arrival - publish time.

    PYTHONPATH=src python scripts/fanout_compare.py --rate 200 --seconds 10 --nodes 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

from redis.asyncio import Redis

from chatctl.broker.redis_keys import PUBLISH, room_keys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


async def run(port: int, rate: float, count: int, nodes: int) -> None:
    keys = room_keys("cmp", "room")
    pub = Redis(port=port, decode_responses=True, protocol=2)
    script = pub.register_script(PUBLISH)
    pubsub_lat: list[float] = []
    xread_lat: list[float] = []
    ready = asyncio.Event()

    async def pubsub_node() -> None:
        r = Redis(port=port, decode_responses=True, protocol=2)
        ps = r.pubsub(ignore_subscribe_messages=True)
        await ps.subscribe(keys.channel)
        got = 0
        while got < count:
            msg = await ps.get_message(timeout=None)
            if msg is None:
                continue
            pubsub_lat.append(time.monotonic() - float(json.loads(msg["data"])["t"]))
            got += 1
        await ps.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed in redis >= 6
        await r.aclose()

    async def xread_node() -> None:
        r = Redis(port=port, decode_responses=True, protocol=2)
        last = "0-0"
        got = 0
        while got < count:
            reply: Any = await r.xread({keys.log: last}, block=0, count=500)
            for _, entries in reply:
                for entry_id, fields in entries:
                    xread_lat.append(time.monotonic() - float(fields["t"]))
                    last = entry_id
                    got += 1
        await r.aclose()

    async def publisher() -> dict[str, Any]:
        await ready.wait()
        before: dict[str, Any] = await pub.info("commandstats")
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            args: list[str | int] = ["e", "u", f"{time.monotonic():.6f}", "text", "", 1000]
            args += [1000, keys.channel]
            await script(keys=[keys.meta, keys.log, keys.dedup], args=args)
        return before

    readers = [asyncio.create_task(pubsub_node()) for _ in range(nodes)]
    readers += [asyncio.create_task(xread_node()) for _ in range(nodes)]
    await asyncio.sleep(0.5)  # let every reader connect and block (a benchmark, not a test)
    ready.set()
    before = await publisher()
    await asyncio.gather(*readers)
    after: dict[str, Any] = await pub.info("commandstats")
    await pub.aclose()

    def calls(name: str) -> int:
        b = before.get(f"cmdstat_{name}", {"calls": 0})["calls"]
        return int(after.get(f"cmdstat_{name}", {"calls": 0})["calls"]) - int(b)

    print(f"{count} messages at {rate:g}/s, {nodes} nodes per method")
    for label, lat in (("pub/sub", pubsub_lat), ("XREAD BLOCK", xread_lat)):
        print(f"  {label:12} p50 {pct(lat, 50):6.3f} ms  p99 {pct(lat, 99):6.3f} ms  n={len(lat)}")
    print(f"  XREAD calls per message (all {nodes} nodes): {calls('xread') / count:.2f}")
    print(f"  SUBSCRIBE calls in total: {calls('subscribe')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="chatctl-fanout-")
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        asyncio.run(run(port, args.rate, int(args.rate * args.seconds), args.nodes))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
