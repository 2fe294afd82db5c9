"""The rooms the SQLite broker holds in memory, a cache of the database, and retention's
memory side: what a sweep forgets of them, which rooms it lets go, and how often it runs
(the database's side is :class:`~chatctl.broker.sqlite.ops.Sweep`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chatctl.broker.memory import sweep_interval
from chatctl.broker.rooms import RoomState
from chatctl.broker.sqlite.ops import Publish
from chatctl.errors import BrokerError

#: Seconds a room nobody uses stays in memory (it is on disk: this is only a cache).
CACHE_IDLE = 30.0
#: Seconds a room just used is kept in memory even when retention has expired it (a request
#: that read it may still be using it).
STALE_GRACE = 1.0


@dataclass(eq=False)
class CachedRoom(RoomState):
    rid: int = 0
    #: publishes waiting for their commit, by (user, client id): a repeat waits for it too
    inflight: dict[tuple[str, str], Publish] = field(default_factory=dict)
    #: publishes queued and not yet answered (a busy room stays in memory)
    busy: int = 0
    used: float = 0.0


def expire(
    rooms: dict[str, CachedRoom],
    *,
    horizon: float | None,
    dedup_horizon: float,
    evict: Callable[[CachedRoom], None],
) -> None:
    """Forget the messages older than ``horizon`` (None: kept) and the de-duplication
    entries older than ``dedup_horizon``; take the rooms nobody uses out of ``rooms``,
    handing each to ``evict``."""
    mono = time.monotonic()
    for name, r in list(rooms.items()):
        if horizon is not None:
            r.forget_messages_before(horizon)
        r.forget_seen_before(dedup_horizon)
        # forgotten by retention, or unused for a while: it is on disk, memory is a cache
        stale = horizon is not None and r.touched < horizon and r.used < mono - STALE_GRACE
        if r.idle and not r.busy and not r.inflight and (r.used < mono - CACHE_IDLE or stale):
            del rooms[name]
            evict(r)


async def sweep_forever(sweep: Callable[[], Awaitable[bool]], history_ttl: float) -> None:
    """Call ``sweep()`` every little while (again at once while it says there is more)."""
    interval = min(sweep_interval(history_ttl) if history_ttl else 60.0, CACHE_IDLE / 3)
    while True:
        await asyncio.sleep(interval)
        try:
            while await sweep():
                pass
        except BrokerError:
            pass  # logged by the writer; the next round tries again
