"""The SQLite broker's publish latency under a busy event loop, in one process, no sockets.

One room, ``--rate`` publishes a second (each with a client id, as ``chatctl send`` does);
after each is delivered the loop spins ``--busy`` ms of pure Python, as a fan-out to a big
room would. Prints the latency from ``publish_nowait`` to its callback (p50, p99, p99.9,
max) and, for SQLite, what was handed to the writer thread (every batch there pays a GIL
hand-over per statement to the busy loop). ``--broker memory`` is the reference.

    PYTHONPATH=src python bench/sqlite_tail.py --broker sqlite --rate 60 --busy 6 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from typing import Any

from chatctl.broker.base import PublishResult
from chatctl.broker.memory import MemoryBroker
from chatctl.broker.sqlite import SQLiteBroker
from chatctl.broker.sqlite import writer as sqlite_writer


def spin(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def count_thread_batches() -> Counter[str]:
    """Count the batches handed to the writer thread, by their first item's type."""
    seen: Counter[str] = Counter()
    submit = sqlite_writer.Writer.submit

    def counting(self: sqlite_writer.Writer, items: list[Any]) -> None:
        seen[type(items[0]).__name__ if items else "-"] += 1
        submit(self, items)

    sqlite_writer.Writer.submit = counting  # type: ignore[method-assign]
    return seen


async def run(args: argparse.Namespace) -> dict[str, Any]:
    lat: list[float] = []
    n = int(args.rate * args.seconds)
    busy = args.busy / 1000
    thread = count_thread_batches()
    if args.broker == "sqlite":
        broker: SQLiteBroker | MemoryBroker = SQLiteBroker(tempfile.mkdtemp())
    else:
        broker = MemoryBroker()
    await broker.start()
    await broker.subscribe("room", lambda message: None)
    all_in = asyncio.Event()

    def answered(sent: float) -> None:
        lat.append(time.perf_counter() - sent)
        spin(busy)  # the fan-out of the delivered message
        if len(lat) == n:
            all_in.set()

    def done(sent: float) -> Any:
        return lambda result, error: answered(sent)

    def finished(sent: float) -> Any:
        return lambda future: answered(sent)

    start = time.perf_counter()
    for i in range(n):
        delay = start + i / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        if isinstance(broker, SQLiteBroker):
            broker.publish_nowait("room", "u", f"m{i}", client_id=f"c{i}", done=done(sent))
        else:
            task: asyncio.Task[PublishResult] = asyncio.ensure_future(
                broker.publish("room", "u", f"m{i}", client_id=f"c{i}")
            )
            task.add_done_callback(finished(sent))
    await all_in.wait()
    await broker.close()
    lat.sort()

    def q(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2)

    return {
        "broker": args.broker,
        "n": len(lat),
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "p999_ms": q(0.999),
        "max_ms": round(lat[-1] * 1000, 2),
        "thread_batches": dict(thread),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--rate", type=float, default=60.0, help="publishes a second")
    parser.add_argument("--busy", type=float, default=6.0, help="ms of loop work per delivery")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
