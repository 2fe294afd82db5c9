"""``chatctl bench chaos``: run seeded schedules against real processes, check each history,
print a summary last. Exit status 1 on any violation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from chatctl.bench.chaos.check import Violation, check, messages_checked
from chatctl.bench.chaos.history import (
    Delivery,
    Disconnect,
    End,
    Fault,
    History,
    Paged,
    Welcome,
)
from chatctl.bench.chaos.schedule import Schedule, plan
from chatctl.bench.chaos.world import ROOMS, World, run_faults
from chatctl.protocol import MAX_HISTORY_PAGE

#: close codes of receivers' connections worth counting in the summary
CLOSES = {"4008": "slow consumer", "4001": "token expired"}
#: what a node logs when it cuts a slow consumer (server/hub.py)
SLOW_CUT = "slow consumer disconnected"
#: seconds senders get after the faults end to have every message acked
SETTLE = 30.0


@dataclass
class ScheduleResult:
    schedule: Schedule
    faults: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    acked: int = 0
    #: acks by kind of sender, and tokens renewed by ``refresh`` frames
    clients: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


async def run_schedule(schedule: Schedule, workdir: Path) -> ScheduleResult:
    history = History(schedule.broker, schedule.durable, schedule.seed)
    world = World(schedule, workdir, history)
    result = ScheduleResult(schedule)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    tasks: list[asyncio.Future[None]] = []
    try:
        await world.start()
        start = loop.time()
        send_until, deadline = start + schedule.seconds, start + schedule.seconds + SETTLE
        world.deadline = deadline
        tasks += [asyncio.ensure_future(r.run(stop)) for r in world.receivers]
        senders = [asyncio.ensure_future(s.run(send_until, deadline)) for s in world.raw]
        senders += [asyncio.ensure_future(c.run(send_until, deadline)) for c in world.cli]
        tasks += senders
        await asyncio.wait_for(run_faults(world, result.log), schedule.seconds + 30)
        await world.heal()
        await asyncio.wait([*senders, *world.bursts], timeout=max(1.0, deadline - loop.time()))
        await _catch_up(world, history)
        history.add(End())
        for room in ROOMS:
            await _final_read(world, history, room)
    finally:
        stop.set()
        tasks += world.bursts
        for t in tasks:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        await world.close()
        # a node cuts a slow consumer with 4008 but drops the TCP connection 2 s later if the
        # client does not read up to the close frame: the client then sees 1006, the log 4008
        slow_cuts = sum(_count(node.log, SLOW_CUT) for node in world.nodes)
    result.faults = Counter(e.name for e in history.events if isinstance(e, Fault))
    if schedule.rate_limit:
        result.faults["rate_limit"] += 1
    result.violations = check(history)
    result.messages = messages_checked(history)
    if not schedule.persistent:
        result.faults["redis_without_persistence"] += 1
    result.acked = sum(s.acked for s in world.raw) + sum(c.acked for c in world.cli)
    result.clients["websocket"] = sum(s.acked for s in world.raw)
    for c in world.cli:
        result.clients["chatctl send --http" if c.http else "chatctl send"] += c.acked
    result.clients["token refreshes"] = sum(r.refreshed for r in world.receivers)
    for e in history.events:
        if isinstance(e, Disconnect) and e.why in CLOSES:
            result.clients[CLOSES[e.why]] += 1
    result.clients[CLOSES["4008"]] = max(result.clients[CLOSES["4008"]], slow_cuts)
    result.clients["paged resumes"] = sum(
        1 for e in history.events if isinstance(e, Paged) and e.reached == e.since + 1
    )
    for v in result.violations[:20]:
        result.report += v.report(history)
    return result


def _count(log: Path, line: str) -> int:
    """Lines of a node's log that hold ``line``."""
    try:
        return log.read_text(errors="replace").count(line)
    except OSError:
        return 0


async def _catch_up(world: World, history: History, timeout: float = 10) -> None:
    """Wait until every connected receiver has the newest id of its room's epoch: the newest
    delivered so far or the one a fresh welcome reports, whichever is higher (a message
    stored just before the end may not have reached any receiver yet)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + timeout
    stored: dict[tuple[str, str], int] = {}
    for room in ROOMS:
        welcome = await _welcome(world, room, f"probe-{room}", 0)
        if welcome is not None:
            stored[(room, welcome["epoch"])] = welcome["last_id"]
    while loop.time() < until:
        newest = dict(stored)
        for e in history.events:
            if isinstance(e, Delivery):
                key = (e.room, e.epoch)
                newest[key] = max(newest.get(key, 0), e.id)
        behind = [
            r
            for r in world.receivers
            if r.ws is not None
            and r.epoch is not None
            and r.last_id < newest.get((r.room, r.epoch), 0)
        ]
        if not behind:
            return
        await asyncio.sleep(0.1)


async def _welcome(world: World, room: str, name: str, keep: int) -> dict[str, Any] | None:
    """A fresh connection's welcome to ``room`` on the first node, with up to ``keep``
    messages of history (None if the node does not answer in ten seconds of tries)."""
    url = f"ws://127.0.0.1:{world.nodes[0].port}/ws/{room}?history={keep}"
    headers = {"Authorization": f"Bearer {world.token(name)}"}
    for _ in range(20):
        try:
            async with connect(url, additional_headers=headers, max_size=2**27) as ws:
                welcome: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
                return welcome
        except Exception:
            await asyncio.sleep(0.5)
    return None


async def _final_read(world: World, history: History, room: str) -> None:
    """The room's whole history, read by a fresh connection once everything is healed: its
    welcome, then ``history`` pages back to the oldest kept message (a welcome alone holds
    only what fits in the nodes' --max-pending)."""
    name = f"final-{room}"
    url = f"ws://127.0.0.1:{world.nodes[0].port}/ws/{room}?history=0&receive=0&presence=0"
    headers = {"Authorization": f"Bearer {world.token(name)}"}
    for _ in range(20):
        try:
            async with connect(url, additional_headers=headers, max_size=2**27) as ws:
                w = json.loads(await asyncio.wait_for(ws.recv(), 10))
                messages = await _all_pages(ws, w["epoch"])
        except Exception:
            await asyncio.sleep(0.5)
            continue
        if messages is None:  # the room's epoch changed while reading: read it again
            continue
        history.add(Welcome(name, 1, room, w["epoch"], w["last_id"]))
        for f in messages:
            history.add(
                Delivery(
                    name,
                    1,
                    room,
                    f["id"],
                    w["epoch"],
                    f["message"],
                    f["user"],
                    f.get("client_id"),
                    history=True,
                )
            )
        return


async def _all_pages(ws: Any, epoch: str) -> list[dict[str, Any]] | None:
    """Every kept message of the connection's room, oldest first, by ``history`` requests
    (None if a page is of another epoch)."""
    messages: list[dict[str, Any]] = []
    request: dict[str, Any] = {"type": "history", "limit": MAX_HISTORY_PAGE}
    while True:
        await ws.send(json.dumps(request))
        while True:
            page = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if page.get("type") == "history":
                break
            if page.get("type") == "error":
                await asyncio.sleep(min(float(page.get("retry_after") or 0.2), 2.0))
                await ws.send(json.dumps(request))
        if page["epoch"] != epoch:
            return None
        messages[:0] = page["messages"]
        if not page["more"] or not page["messages"]:
            return messages
        request["before"] = page["messages"][0]["id"]


def run_chaos(
    *, seed: int, duration: float, broker: str, schedule_seconds: float, keep: bool = False
) -> int:
    """Schedules of ``schedule_seconds`` until ``duration`` is spent; the summary on stdout;
    0 when no violation, 1 otherwise."""
    results: list[ScheduleResult] = []
    count = max(1, round(duration / schedule_seconds))
    for n in range(count):
        s = plan(seed + n, broker, schedule_seconds)
        workdir = Path(tempfile.mkdtemp(prefix=f"chatctl-chaos-{broker}-"))
        try:
            r = asyncio.run(run_schedule(s, workdir))
        finally:
            if not keep:
                shutil.rmtree(workdir, ignore_errors=True)
        results.append(r)
        bad = f", {len(r.violations)} VIOLATIONS" if r.violations else ""
        print(
            f"schedule {n + 1}/{count} seed={s.seed}: {sum(r.faults.values())} faults, "
            f"{r.messages} messages checked, {r.acked} acked{bad}",
            flush=True,
        )
        if r.violations:
            print("\n".join([*s.describe(), *r.log, *r.report]), flush=True)
    return _summary(results, seed, broker, schedule_seconds)


def _summary(results: list[ScheduleResult], seed: int, broker: str, seconds: float) -> int:
    faults: Counter[str] = Counter()
    for r in results:
        faults.update(r.faults)
    violations = sum(len(r.violations) for r in results)
    print(f"chaos summary: broker {broker}, seed {seed}, {len(results)} schedules of {seconds:g} s")
    print("  faults: " + (", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none"))
    print(
        f"  messages checked: {sum(r.messages for r in results)}, acked: "
        f"{sum(r.acked for r in results)}"
    )
    clients: Counter[str] = Counter()
    for r in results:
        clients.update(r.clients)
    closed = ", ".join(f"{why} {clients[why]}" for why in CLOSES.values())
    print(
        f"  acked from: websocket {clients['websocket']}, chatctl send {clients['chatctl send']}"
        f", chatctl send --http {clients['chatctl send --http']}; token refreshes: "
        f"{clients['token refreshes']}; receivers closed as {closed}; resumes paged back "
        f"to since: {clients['paged resumes']}"
    )
    print(f"  violations: {violations}")
    if violations:
        bad = [str(r.schedule.seed) for r in results if r.violations]
        print(
            f"  replay: chatctl bench chaos --broker {broker} --seed {bad[0]} "
            f"--duration {seconds:g} --schedule-seconds {seconds:g}  (failing seeds: "
            f"{', '.join(bad)})"
        )
    return 1 if violations else 0


__all__ = ["ScheduleResult", "run_chaos", "run_schedule"]
