"""A seeded schedule of faults: which, when, against what. The same seed, broker and length
give the same schedule (the processes' own timing still varies from run to run)."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: faults every broker gets, and those only some do
COMMON_FAULTS = (
    "node_kill",
    "node_term",
    "node_stop",
    "client_cut",
    "proxy_delay",
    "proxy_pause",
    "proxy_cut",
)
BROKER_FAULTS = {
    "memory": (),
    "sqlite": ("disk_full", "disk_full"),
    "redis": ("redis_restart", "redis_kill"),
    "rediscluster": ("master_kill", "master_kill", "master_failover"),
}
#: seconds a slow reader stops reading: long enough for the room's traffic to fill its
#: small socket buffer and websockets' queue, so that the node's output to it backs up
SLOW_READER_HOLD = 6.0
#: seconds a slow consumer stops reading while a burst of large messages comes to its room:
#: its pending output passes the node's --max-pending and the node cuts it (4008)
SLOW_CONSUMER_HOLD = 5.0
#: the bound on a connection's pending output, in KiB, that a schedule with slow consumers
#: gives its nodes (the others: LARGE_PENDING bytes, which no reader of theirs reaches)
SMALL_PENDING_KIB = (64, 128, 256)
LARGE_PENDING = 2**27
#: the broker keeps every acked message across every fault above (see docs/reliability.md)
DURABLE = {"memory": False, "sqlite": True, "redis": True, "rediscluster": True}
NODES = {"memory": 1, "sqlite": 1, "redis": 2, "rediscluster": 2}


@dataclass(frozen=True)
class PlannedFault:
    at: float  # seconds after the schedule started
    name: str
    target: int  # a node (or client, proxy) index; the runner takes it modulo the count
    hold: float  # how long a pause, stop, delay or full disk lasts; a restart's downtime

    def describe(self) -> str:
        return f"t={self.at:5.2f}s {self.name} target={self.target} hold={self.hold:.2f}s"


@dataclass(frozen=True)
class Schedule:
    seed: int
    broker: str
    seconds: float
    rate_limit: bool
    faults: tuple[PlannedFault, ...]
    #: Redis keeps its data across a restart (AOF, fsync always); without it a restart loses
    #: history and the broker is not durable for the schedule (docs/reliability.md)
    persistent: bool = True
    #: the nodes' --max-pending, in bytes
    max_pending: int = LARGE_PENDING

    @property
    def durable(self) -> bool:
        """Every acked message must survive every fault of this schedule."""
        return DURABLE[self.broker] and self.persistent

    def describe(self) -> list[str]:
        head = f"schedule seed={self.seed} broker={self.broker} seconds={self.seconds:g}"
        head += " rate-limit=on" if self.rate_limit else ""
        head += "" if self.persistent else " redis-persistence=off"
        head += "" if self.max_pending == LARGE_PENDING else f" max-pending={self.max_pending}"
        return [head, *("  " + f.describe() for f in self.faults)]


def plan(seed: int, broker: str, seconds: float) -> Schedule:
    rng = random.Random(f"{seed}:{broker}:{seconds:g}")
    kinds = COMMON_FAULTS + BROKER_FAULTS[broker]
    count = max(2, int(seconds / 2))
    end = max(1.5, seconds - 1.5)
    faults = sorted(
        (
            PlannedFault(
                round(rng.uniform(0.8, end), 2),
                rng.choice(kinds),
                rng.randrange(64),
                round(rng.uniform(0.2, 1.8), 2),
            )
            for _ in range(count)
        ),
        key=lambda f: f.at,
    )
    rate_limit = rng.random() < 0.35
    persistent = broker != "redis" or rng.random() < 0.7
    # drawn after the rest, so that a seed's earlier faults stay what they were
    if rng.random() < 0.5:
        slow = PlannedFault(
            round(rng.uniform(0.8, end), 2), "slow_reader", rng.randrange(64), SLOW_READER_HOLD
        )
        faults = sorted((*faults, slow), key=lambda f: f.at)
    max_pending = LARGE_PENDING
    if rng.random() < 0.5:  # slow consumers, cut by a small --max-pending, resuming paged
        max_pending = rng.choice(SMALL_PENDING_KIB) * 1024
        latest = max(0.8, seconds - SLOW_CONSUMER_HOLD)
        cuts = [
            PlannedFault(
                round(rng.uniform(0.5, latest), 2),
                "slow_consumer",
                rng.randrange(64),
                SLOW_CONSUMER_HOLD,
            )
            for _ in range(1 + int(seconds > 12))
        ]
        faults = sorted((*faults, *cuts), key=lambda f: f.at)
    return Schedule(seed, broker, seconds, rate_limit, tuple(faults), persistent, max_pending)


__all__ = ["BROKER_FAULTS", "COMMON_FAULTS", "DURABLE", "NODES", "PlannedFault", "Schedule", "plan"]
