"""The honest sender/listener pair of the abuse test, run as its own process:
``python honest_pair.py PORT SECONDS`` prints one JSON object (latencies in seconds, client
ids acked and delivered, error frames)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from support.helpers import client, recv_type


async def honest_pair(port: int, seconds: float) -> dict[str, Any]:
    """Send a timestamped message every 10 ms; record latency, acks and deliveries."""
    latencies: list[float] = []
    acked: set[str] = set()
    delivered: list[str] = []
    result: dict[str, Any] = {}
    async with client(port, "lobby", "honest-listener") as listener:
        await recv_type(listener, "welcome")
        async with client(port, "lobby", "honest-sender") as sender:
            await recv_type(sender, "welcome")

            progress = asyncio.Event()

            async def read_acks() -> None:
                async for data in sender:
                    frame = json.loads(data)
                    if frame["type"] == "ack":
                        acked.add(frame["client_id"])
                    elif frame["type"] == "error":
                        result.setdefault("errors", []).append(frame)
                    progress.set()

            async def read_messages() -> None:
                async for data in listener:
                    frame = json.loads(data)
                    if frame["type"] == "message" and frame.get("client_id"):
                        delivered.append(frame["client_id"])
                        sent_at = float(frame["message"].split()[1])
                        latencies.append(time.perf_counter() - sent_at)
                        progress.set()

            tasks = [asyncio.create_task(read_acks()), asyncio.create_task(read_messages())]
            i, run = 0, random.randrange(1 << 30)  # client ids are de-duplicated across runs
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                text = f"m {time.perf_counter():.6f}"
                await sender.send(json.dumps({"message": text, "client_id": f"h{run}-{i}"}))
                i += 1
                await asyncio.sleep(0.01)
            # wait for the last answers and deliveries (the caller asserts on what came)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    while len(acked) + len(result.get("errors", [])) < i or not acked <= set(
                        delivered
                    ):
                        progress.clear()
                        await progress.wait()
            for t in tasks:
                t.cancel()
    result.update(latencies=latencies, acked=sorted(acked), delivered=delivered, sent=i)
    return result


if __name__ == "__main__":
    out = asyncio.run(honest_pair(int(sys.argv[1]), float(sys.argv[2])))
    print(json.dumps(out))
