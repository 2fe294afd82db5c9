"""The server's queue of token expiries (chatctl.server.expiry.ExpiryQueue): one timer for all
connections, each still closed at its own exp plus the leeway, whatever ends, refreshes or
arrives meanwhile. The live behaviour (4001, refresh frames) is in test_token_expiry.py."""

from __future__ import annotations

import asyncio
import random
import time
from types import SimpleNamespace
from typing import Any, cast

from chatctl.server.expiry import ExpiryQueue, TokenExpiry
from chatctl.server.membership import Membership
from chatctl.server.metrics import Counters
from chatctl.tokens.claims import NO_RAW, Claims

fired: list[tuple[str, float]] = []


class Recorded(TokenExpiry):
    """Records when it expires instead of closing a connection."""

    __slots__ = ()

    def expire(self) -> None:
        fired.append((self.member.user, time.time()))


def entry(queue: ExpiryQueue, user: str, exp: float | None) -> Recorded:
    claims = Claims(user, None, exp, NO_RAW)
    member: Any = SimpleNamespace(
        user=user,
        room="r",
        conn=SimpleNamespace(remote_address=("127.0.0.1", 4000)),
        conn_id=f"c-{user}",
        adm=SimpleNamespace(claims=claims),
    )
    return Recorded(cast(Membership, member), queue)


def check_heap(queue: ExpiryQueue, expected: set[TokenExpiry]) -> None:
    heap = queue._heap
    assert set(heap) == expected and len(heap) == len(expected)
    for i, item in enumerate(heap):
        assert item._pos == i
        assert item._key == item.exp
        if i:
            assert heap[(i - 1) // 2]._key <= item._key


async def test_the_heap_stays_ordered_through_adds_refreshes_and_ends() -> None:
    queue = ExpiryQueue(leeway=5.0, counters=Counters())
    rng = random.Random(17)
    far = time.time() + 3600
    live: set[TokenExpiry] = set()
    every = [entry(queue, f"u{k}", far + rng.random() * 100) for k in range(400)]
    for step in range(3000):
        e = rng.choice(every)
        action = rng.random()
        if action < 0.8:
            if action >= 0.5:  # a refresh: later, sooner, or a token without exp
                e.exp = None if rng.random() < 0.05 else far + rng.random() * 100
            e.start()
            if e.exp is None:  # never expires: not queued
                live.discard(e)
            else:
                live.add(e)
        else:
            e.cancel()
            e.cancel()  # twice is harmless
            live.discard(e)
        if step % 100 == 0:
            check_heap(queue, live)
    check_heap(queue, live)
    assert len(queue) == len(live)


async def test_each_connection_expires_at_its_own_deadline() -> None:
    fired.clear()
    leeway = 0.1
    queue = ExpiryQueue(leeway=leeway, counters=Counters())
    now = time.time()
    exps = {"a": now + 0.3, "b": now + 0.1, "c": now + 0.2, "gone": now + 0.15, "later": now}
    entries = {user: entry(queue, user, exp) for user, exp in exps.items()}
    for e in entries.values():
        e.start()
    entries["gone"].cancel()  # the connection ended first
    entries["later"].exp = exps["later"] = now + 0.4  # refreshed
    entries["later"].start()
    await asyncio.sleep(0.7)
    assert [user for user, _ in fired] == ["b", "c", "a", "later"]
    for user, at in fired:
        assert exps[user] + leeway <= at < exps[user] + leeway + 0.1, user
    assert len(queue) == 0
    # an expiry that arrives after the timer emptied the queue arms it again
    fired.clear()
    entry(queue, "new", time.time()).start()
    await asyncio.sleep(leeway + 0.1)
    assert [user for user, _ in fired] == ["new"]


async def test_one_failing_expiry_does_not_stop_the_others() -> None:
    fired.clear()
    queue = ExpiryQueue(leeway=0.0, counters=Counters())

    class Broken(Recorded):
        __slots__ = ()

        def expire(self) -> None:
            raise RuntimeError("boom")

    now = time.time()
    broken = Broken(entry(queue, "broken", now).member, queue)
    broken.start()
    entry(queue, "fine", now + 0.01).start()
    await asyncio.sleep(0.2)
    assert [user for user, _ in fired] == ["fine"]
