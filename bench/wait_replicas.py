"""Publish latency with and without ``--redis-wait-replicas 1`` on a local 3-master cluster
with one replica per master, alternated in one run (300 sequential publishes per block).

    PYTHONPATH=src:tests python bench/wait_replicas.py

Uses the tests' cluster helper (tests/support/cluster_helpers.py) to start the cluster.
"""

from __future__ import annotations

import asyncio
import time

from chatctl.broker.redis.cluster import RedisClusterBroker
from support.cluster_helpers import LocalCluster


async def measure(cluster: LocalCluster, blocks: int = 6, per_block: int = 300) -> None:
    brokers = {
        "without": RedisClusterBroker(cluster.url, prefix="w0"),
        "wait 1": RedisClusterBroker(cluster.url, prefix="w1", wait_replicas=1),
    }
    times: dict[str, list[float]] = {name: [] for name in brokers}
    for b in brokers.values():
        await b.start()
    try:
        for block in range(blocks):
            for name, b in brokers.items():
                for i in range(per_block):
                    started = time.perf_counter()
                    await b.publish("room", "u", "m", client_id=f"{block}-{i}")
                    times[name].append((time.perf_counter() - started) * 1000)
    finally:
        for b in brokers.values():
            await b.close()
    for name, v in times.items():
        v.sort()
        p50, p90, p99 = (v[int(len(v) * q)] for q in (0.5, 0.9, 0.99))
        print(f"{name:8s} n={len(v)} p50 {p50:.3f} ms  p90 {p90:.3f} ms  p99 {p99:.3f} ms")


def main() -> None:
    cluster = LocalCluster(masters=3, replicas=1).start()
    try:
        asyncio.run(measure(cluster))
    finally:
        cluster.cleanup()


if __name__ == "__main__":
    main()
