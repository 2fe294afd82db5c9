"""A resume whose welcome history is cut to fit ``--max-pending``: the welcome says
``recovered: false`` with ``more: true``, and paging back with ``history`` requests to
``since + 1`` gives every message after ``since`` exactly once, live ones included."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from support.helpers import client, make_server, recv_type

SIZE = 4000  # a message frame of about 4,100 bytes: 4 of them fit in 20,000


async def publish(ws: ClientConnection, first: int, n: int) -> None:
    """Send messages ``m{first}`` … and wait for their acks."""
    for i in range(first, first + n):
        await ws.send(json.dumps({"message": f"m{i}" + "x" * SIZE, "client_id": f"c{i}"}))
    for _ in range(n):
        await recv_type(ws, "ack")


async def page_back(ws: ClientConnection, since: int, before: int) -> tuple[list[int], list[int]]:
    """Page with ``history`` requests from ``before`` down to ``since + 1``: the paged ids
    (oldest first) and the ids of the live messages that arrived meanwhile."""
    paged: list[int] = []
    live: list[int] = []
    while before > since + 1:
        await ws.send(json.dumps({"type": "history", "before": before, "limit": 200}))
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == "message":
                live.append(frame["id"])
            elif frame["type"] == "history":
                break
        got = [m["id"] for m in frame["messages"] if m["id"] > since]
        assert got, frame  # every message after `since` is kept: a page is never empty
        paged = got + paged
        before = got[0]
        if before > since + 1:
            assert frame["more"] is True
    return paged, live


async def test_a_resume_cut_by_max_pending_says_more_and_pages_every_message_once() -> None:
    srv = make_server(max_pending_bytes=20_000)
    async with srv, client(srv.port, "ops", "alice", receive="0") as alice:
        welcome = await recv_type(alice, "welcome")
        await publish(alice, 1, 3)
        since, epoch = 3, welcome["epoch"]
        await publish(alice, 4, 12)  # 12 messages after `since`: about 49,000 bytes
        async with client(srv.port, "ops", "bob", since=str(since), epoch=epoch) as bob:
            w = await recv_type(bob, "welcome")
            assert w["since"] == since and w["recovered"] is False and w["more"] is True
            held = [m["id"] for m in w["history"]]
            assert 0 < len(held) < 12 and held == list(range(held[0], 16)) and w["last_id"] == 15
            await publish(alice, 16, 2)  # live while bob pages
            paged, live = await page_back(bob, since, held[0])
            while len(live) < 2:
                frame = await recv_type(bob, "message")
                live.append(frame["id"])
            got = paged + held + live
            assert got == list(range(since + 1, 18))  # every message after `since`, once


async def test_a_resume_that_fits_says_recovered_and_no_more() -> None:
    srv = make_server(max_pending_bytes=20_000)
    async with srv, client(srv.port, "ops", "alice", receive="0") as alice:
        welcome = await recv_type(alice, "welcome")
        await publish(alice, 1, 5)
        async with client(srv.port, "ops", "bob", since="3", epoch=welcome["epoch"]) as bob:
            w = await recv_type(bob, "welcome")
            assert w["recovered"] is True and "more" not in w
            assert [m["id"] for m in w["history"]] == [4, 5]


async def test_a_resume_past_what_the_broker_keeps_says_no_more() -> None:
    """Cut by the broker's --history (messages gone), not only by the budget: no ``more``."""
    srv = make_server(max_pending_bytes=20_000, history_size=6)
    async with srv, client(srv.port, "ops", "alice", receive="0") as alice:
        welcome = await recv_type(alice, "welcome")
        await publish(alice, 1, 12)
        async with client(srv.port, "ops", "bob", since="1", epoch=welcome["epoch"]) as bob:
            w = await recv_type(bob, "welcome")
            assert w["recovered"] is False and "more" not in w


async def test_a_resume_across_an_epoch_change_says_no_more() -> None:
    srv = make_server(max_pending_bytes=20_000)
    async with srv, client(srv.port, "ops", "alice", receive="0") as alice:
        await recv_type(alice, "welcome")
        await publish(alice, 1, 12)
        async with client(srv.port, "ops", "bob", since="1", epoch="not-the-epoch") as bob:
            w = await recv_type(bob, "welcome")
            assert w["recovered"] is False and "more" not in w
