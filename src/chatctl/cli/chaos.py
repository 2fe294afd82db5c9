"""``chatctl bench chaos``: its flags; the work is done by :mod:`chatctl.bench.chaos`."""

from __future__ import annotations

import random
import sys
from typing import Annotated

import typer

from chatctl.errors import UsageError
from chatctl.status import ExitStatus

CHAOS_EPILOG = """\
Examples:

  chatctl bench chaos --broker sqlite --duration 60

  chatctl bench chaos --broker redis --seed 1234 --duration 15

Starts its own chatctl serve nodes (2 for redis and rediscluster), and for
redis its own redis-server with AOF on a free port (for rediscluster a Redis
Cluster of 3 masters with a replica each, nodes run with
--redis-wait-replicas 1), clients that send, re-send and resume, and a
seeded schedule of faults (node SIGKILL/SIGTERM/SIGSTOP, Redis restarts,
cluster master kills and failovers, cut connections, a TCP proxy that
delays, pauses and cuts, SQLite disk full, rate limits). Every history is
checked against docs/protocol.md; a violation prints its rule, the seed, the
schedule and the events that show it. See docs/reliability.md.

Exit status: 0 no violation; 1 a violation (replay it with the printed
--seed); 2 usage error; 130 interrupted.
"""

BROKER_NAMES = ("memory", "sqlite", "redis", "rediscluster")


def chaos(
    broker: Annotated[
        str,
        typer.Option(help="memory, sqlite, redis or rediscluster (each started by the checker)."),
    ] = "memory",
    seed: Annotated[
        int | None, typer.Option(help="First schedule's seed (default: random, printed).")
    ] = None,
    duration: Annotated[
        float, typer.Option(help="Seconds of schedules in all (one at least).", min=1)
    ] = 60.0,
    schedule_seconds: Annotated[
        float, typer.Option(help="Seconds of faults and sending per schedule.", min=3)
    ] = 15.0,
    keep: Annotated[
        bool, typer.Option(help="Keep each schedule's directory (node logs, data).")
    ] = False,
) -> None:
    """Check delivery, order and de-duplication under a random schedule of faults."""
    name = broker.split(":", 1)[0].lower()
    if name not in BROKER_NAMES:
        raise UsageError(f"--broker must be one of {', '.join(BROKER_NAMES)}, not {broker!r}")
    if seed is None:
        seed = random.SystemRandom().randrange(1, 10**9)
    print(f"chaos: broker {name}, seed {seed}", file=sys.stderr, flush=True)
    from chatctl.bench.chaos.runner import run_chaos

    status = run_chaos(
        seed=seed, duration=duration, broker=name, schedule_seconds=schedule_seconds, keep=keep
    )
    if status:
        raise typer.Exit(ExitStatus.ERROR)


__all__ = ["CHAOS_EPILOG", "chaos"]
