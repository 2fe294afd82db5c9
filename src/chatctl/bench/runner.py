"""The driver of ``chatctl bench``: plan the connections, spread them over worker processes,
run one step (or, with ``saturate``, steps of rising rate until the knee) and total it up.

:func:`run_bench` returns one plain dict (what ``--json`` prints); report.py renders it.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from chatctl.bench.stats import PairCounts, account, summarize
from chatctl.bench.worker import ClientSpec, Worker, loop_name, serve_pipe
from chatctl.errors import AuthError, ChatctlError, ConnectError

#: A load-client process using more than this share of a core is probably the bottleneck.
CLIENT_CPU_WARN = 0.9
#: Seconds between sending the step to the workers and its first message.
STEP_LEAD = 0.5
#: Idle connections per idle room.
IDLE_ROOM_SIZE = 50


class BenchError(ChatctlError):
    """The bench itself failed (a worker crashed, nothing connected)."""


@dataclass(frozen=True)
class BenchOptions:
    #: base URLs of one or more nodes; clients are spread round-robin, so rooms span them all
    servers: tuple[str, ...] = ("ws://127.0.0.1:8000",)
    rooms: int = 1
    clients: int = 10  # per room
    senders: int = 1  # per room, among the clients
    #: senders connect write-only (``?receive=0&presence=0``, as ``chatctl send``): the room's
    #: traffic is not sent to them, and they are not counted as receivers
    write_only: bool = False
    rate: float = 10.0  # messages/s per sender
    duration: float = 10.0
    size: int = 64  # characters of message text
    idle: int = 0
    procs: int = 1
    drain: float = 2.0
    server_pid: int | None = None
    token: str | None = None
    secret: bytes | None = None
    saturate: bool = False
    p99_bound: float = 0.100  # seconds
    step_factor: float = 1.25
    max_steps: int = 12
    connect_timeout: float = 30.0
    warmup: float = 0.0  # seconds of unrecorded sending before the first step

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("secret")
        d["token"] = "<given>" if self.token else None
        return d


Progress = Callable[..., None]


def _no_progress(event: str, **data: Any) -> None:
    return None


def plan(opts: BenchOptions, run_id: str) -> list[ClientSpec]:
    """Every connection: ``rooms`` x ``clients`` (the first ``senders`` of each room send,
    write-only with ``write_only``),
    then ``idle`` connections, each its own user, ``IDLE_ROOM_SIZE`` to a room (servers cap
    connections per user, and a presence change goes to the whole room). With several servers the
    k-th client of every room goes to server k mod n: senders on the first, rooms on all."""
    bases = [s.rstrip("/") for s in opts.servers]
    specs: list[ClientSpec] = []
    for r in range(opts.rooms):
        for k in range(opts.clients):
            i = len(specs)
            url = f"{bases[k % len(bases)]}/ws/bench-{run_id}-{r}"
            sender = k < opts.senders
            write_only = sender and opts.write_only
            if write_only:
                url += "?receive=0&presence=0"
            specs.append(
                ClientSpec(i, r, url, f"bench-{run_id}-{i}", sender=sender, write_only=write_only)
            )
    for k in range(opts.idle):
        room = f"bench-{run_id}-idle-{k // IDLE_ROOM_SIZE}"
        url = f"{bases[k % len(bases)]}/ws/{room}"
        specs.append(ClientSpec(len(specs), -1, url, f"bench-{run_id}-idle-{k}"))
    return specs


def read_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds ``pid`` has used, from /proc (None without a pid)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _server_cpu(pid: int | None, start: float, end: float) -> float | None:
    """CPU seconds the server used between wall times ``start`` and ``end``."""
    await asyncio.sleep(max(0.0, start - time.time()))
    before = read_cpu_seconds(pid)
    await asyncio.sleep(max(0.0, end - time.time()))
    after = read_cpu_seconds(pid)
    return None if before is None or after is None else after - before


def read_rss_kib(pid: int | None) -> int | None:
    """Resident set size of ``pid`` in KiB from /proc (None without a pid or on error)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class _Local:
    """A worker in this process (``--procs 1``)."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.worker = Worker(**args)

    async def call(self, method: str, **kwargs: Any) -> Any:
        return await getattr(self.worker, method)(**kwargs)

    def stop(self) -> None:
        return None


class _Child:
    """A worker in a child process, called through a pipe."""

    def __init__(self, args: dict[str, Any], executor: ThreadPoolExecutor) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve_pipe, args=(child, args), daemon=True)
        self.proc.start()
        self.executor = executor

    async def call(self, method: str, **kwargs: Any) -> Any:
        self.pipe.send((method, kwargs))
        loop = asyncio.get_running_loop()
        try:
            status, result = await loop.run_in_executor(self.executor, self.pipe.recv)
        except EOFError:
            raise BenchError(f"load process {self.proc.pid} died during {method}") from None
        if status != "ok":
            raise BenchError(f"load process {self.proc.pid} failed during {method}: {result}")
        return result

    def stop(self) -> None:
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


async def run_bench(opts: BenchOptions, progress: Progress = _no_progress) -> dict[str, Any]:
    """Run the bench described by ``opts`` and return its result."""
    if opts.senders > opts.clients:
        raise BenchError("--senders cannot exceed --clients (senders are clients of the room)")
    run_id = secrets.token_hex(3)
    specs = plan(opts, run_id)
    if not specs:
        raise BenchError("nothing to do: give --rooms and --clients, or --idle")
    procs = max(1, min(opts.procs, len(specs)))
    sender_rooms = {s.index: s.room for s in specs if s.sender}
    shares = [specs[w::procs] for w in range(procs)]
    executor = ThreadPoolExecutor(max_workers=procs)
    handles: list[_Local | _Child] = []
    result: dict[str, Any] = {
        "server": opts.servers[0] if len(opts.servers) == 1 else list(opts.servers),
        "run_id": run_id,
        "options": opts.public(),
        "client": {"procs": procs, "loop": loop_name(), "cpus": os.cpu_count()},
        "clock": "time.time() on one host: sender and receiver processes share the wall clock",
    }
    try:
        for share in shares:
            args = {
                "specs": share,
                "sender_rooms": sender_rooms,
                "token": opts.token,
                "secret": opts.secret,
            }
            handles.append(_Local(args) if procs == 1 else _Child(args, executor))
        rss_before = read_rss_kib(opts.server_pid)
        progress("connect", total=len(specs))
        started = time.perf_counter()
        conns = await asyncio.gather(
            *(h.call("connect", timeout=opts.connect_timeout) for h in handles)
        )
        result["connect"] = _connect_summary(conns, len(specs), time.perf_counter() - started)
        # Let the server finish what the connects set off (welcomes, presence) first.
        quiet = await asyncio.gather(*(h.call("quiet", period=0.5, timeout=30) for h in handles))
        result["connect"]["settle_s"] = round(max(q["waited"] for q in quiet), 2)
        result["connect"]["frames"] = sum(q["frames"] for q in quiet)
        rss_after = read_rss_kib(opts.server_pid)
        result["memory"] = _memory(opts, rss_before, rss_after, result["connect"]["connected"])
        progress("connected", connect=result["connect"], memory=result["memory"])
        if result["connect"]["connected"] == 0:
            raise _nothing_connected(result["connect"]["failures"])

        steps: list[dict[str, Any]] = []
        result["steps"] = steps
        if sender_rooms and opts.rate > 0:
            rate = opts.rate
            retried = False
            first = 0
            if opts.warmup > 0:  # unrecorded traffic first: measure a steady state
                progress("step", step="warm-up", rate=rate, duration=opts.warmup, drain=0)
                warm = await _run_step(opts, handles, specs, 0, rate, duration=opts.warmup)
                result["warmup"] = {k: warm[k] for k in ("duration", "sent", "lost", "latency_ms")}
                first = 1
            for i in range(first, first + (opts.max_steps if opts.saturate else 1)):
                progress("step", step=i, rate=rate, duration=opts.duration, drain=opts.drain)
                step = await _run_step(opts, handles, specs, i, rate)
                step["server_rss_kib"] = read_rss_kib(opts.server_pid)
                steps.append(step)
                progress("step_done", step=step)
                if not step["ok"]:
                    # A p99 over the bound may be one noisy moment of a shared machine: try
                    # the same rate once more. A lost message is never noise: stop.
                    if opts.saturate and not retried and step["lost"] == 0:
                        retried = True
                        step["retried"] = True
                        continue
                    break
                retried = False
                rate = _next_rate(rate, opts.step_factor)
        else:
            progress("hold", duration=opts.duration)
            await asyncio.sleep(opts.duration)
        result["knee"] = _knee(steps) if opts.saturate else None
        result["warnings"] = _warnings(opts, result)
        await asyncio.gather(*(h.call("close") for h in handles))
    finally:
        for h in handles:
            h.stop()
        executor.shutdown(wait=False, cancel_futures=True)
    return result


def _nothing_connected(failures: dict[str, int]) -> ChatctlError:
    """The error for a run where no connection opened, with the status that says why."""
    text = f"no connection succeeded: {failures}"
    if failures and all(f in ("HTTP 401", "HTTP 403") for f in failures):
        return AuthError(text + " (see --token, --secret-file)")
    if failures and not any(f.startswith("HTTP ") for f in failures):
        return ConnectError(text)
    return BenchError(text)


def _next_rate(rate: float, factor: float) -> float:
    nxt = rate * factor
    return float(math.ceil(nxt)) if nxt >= 10 else round(nxt, 2)


async def _run_step(
    opts: BenchOptions,
    handles: list[Any],
    specs: list[ClientSpec],
    step: int,
    rate: float,
    *,
    duration: float | None = None,
) -> dict[str, Any]:
    if duration is not None:
        opts = replace(opts, duration=duration)
    start_at = time.time() + STEP_LEAD
    server_cpu = asyncio.create_task(
        _server_cpu(opts.server_pid, start_at, start_at + opts.duration)
    )
    sends = await asyncio.gather(
        *(
            h.call(
                "send",
                step=step,
                rate=rate,
                duration=opts.duration,
                start_at=start_at,
                size=opts.size,
            )
            for h in handles
        )
    )
    sent: dict[int, int] = {}
    for s in sends:
        sent.update(s["sent"])
    deadline = max(time.time(), start_at + opts.duration) + opts.drain
    drains = await asyncio.gather(*(h.call("drain", sent=sent, deadline=deadline) for h in handles))

    room_of = {s.index: s.room for s in specs}
    receivers: list[int] = []
    pairs: list[PairCounts] = []
    latencies = array("d")
    counters: Counter[str] = Counter()
    last_delivery = 0.0
    for d in drains:
        receivers += d["receivers"]
        pairs += d["pairs"]
        latencies.frombytes(d["latencies"])
        counters.update(d["counters"])
        last_delivery = max(last_delivery, d["last_delivery"])
    acc = account(sent, room_of, receivers, pairs)
    lat = summarize(latencies)
    lat_ms = {k: (v if k == "count" else round(v * 1000, 3)) for k, v in lat.items()}
    window = max(opts.duration, last_delivery - start_at)
    p99 = lat["p99"]
    cpu = await server_cpu
    server: dict[str, Any] | None = None
    if cpu is not None:
        server = {
            "cpu": round(cpu / opts.duration, 3),  # share of one core while sending
            "cpu_us_per_delivery": round(cpu * 1e6 / acc.delivered, 2) if acc.delivered else None,
        }
    return {
        "step": step,
        "rate": rate,
        "senders": len(sent),
        "receivers": len(receivers),
        "duration": opts.duration,
        "sent": acc.sent,
        "sent_per_s": round(acc.sent / opts.duration, 1),
        "expected": acc.expected,
        "delivered": acc.delivered,
        "offered_per_s": round(acc.expected / opts.duration, 1),
        "delivered_per_s": round(acc.delivered / window, 1),
        "lost": acc.lost,
        "loss_ratio": round(acc.loss_ratio, 6),
        "duplicates": acc.duplicates,
        "out_of_order": acc.out_of_order,
        "late": counters.pop("late", 0),
        "unmarked": counters.pop("unmarked", 0),
        "disconnects": sum(len(d["dropped_receivers"]) for d in drains),
        "acks": counters.pop("acks", 0),
        "send_failures": counters.pop("send_failures", 0),
        "other_frames": dict(counters),
        "send_lag_ms": round(max(s["send_lag"] for s in sends) * 1000, 1),
        "latency_ms": lat_ms,
        "client_cpu": [round(d["cpu"], 3) for d in drains],
        "server": server,
        "ok": acc.lost == 0 and not math.isnan(p99) and p99 <= opts.p99_bound,
    }


def _connect_summary(conns: list[dict[str, Any]], attempted: int, wall: float) -> dict[str, Any]:
    times: list[float] = []
    failures: Counter[str] = Counter()
    welcomed = 0
    welcome_times: list[float] = []
    for c in conns:
        times += c["times"]
        failures.update(c["failures"])
        welcomed += c["welcomed"]
        welcome_times += c["welcome_times"]
    t = summarize(times)
    w = summarize(welcome_times)
    return {
        "attempted": attempted,
        "connected": len(times),
        "failed": attempted - len(times),
        "failures": dict(failures),
        "welcomed": welcomed,
        "wall_s": round(wall, 3),
        "time_ms": {k: round(v * 1000, 2) for k, v in t.items() if k != "count"},
        #: from the start of the connect burst to each connection's welcome; its max is the
        #: time until every client had its welcome
        "welcome_ms": {k: round(v * 1000, 2) for k, v in w.items() if k != "count"},
    }


def _memory(
    opts: BenchOptions, before: int | None, after: int | None, connected: int
) -> dict[str, Any] | None:
    if opts.server_pid is None:
        return None
    per = None
    if before is not None and after is not None and connected:
        per = round((after - before) / connected, 2)
    return {
        "server_pid": opts.server_pid,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "per_connection_kib": per,
    }


def _knee(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The last step that met the bound (before the step that failed twice, or with loss)."""
    good = [s for s in steps if s["ok"]]
    if not good:
        return None
    last = good[-1]
    return {
        "step": last["step"],
        "rate": last["rate"],
        "delivered_per_s": last["delivered_per_s"],
        "p99_ms": last["latency_ms"]["p99"],
        "reached": not steps[-1]["ok"],
    }


def _warnings(opts: BenchOptions, result: dict[str, Any]) -> list[str]:
    out = []
    for step in result.get("steps", []):
        busiest = max(step["client_cpu"], default=0.0)
        if busiest > CLIENT_CPU_WARN:
            out.append(
                f"step {step['step']} (rate {step['rate']:g}/s): a load process used "
                f"{busiest:.0%} of a core: the client, not the server, may be the bottleneck "
                f"(raise --procs)"
            )
        refused = {
            k.partition(":")[2]: n
            for k, n in step["other_frames"].items()
            if k in ("error:rate_limited", "error:broker_unavailable")
        }
        if refused:
            out.append(
                f"step {step['step']}: the server refused messages ({refused}); the bench does "
                "not re-send them, and a node holds back every later message of a connection "
                "until its refused one comes back (docs/protocol.md, 'Order'): raise the "
                "server's --rate-limit/--user-rate-limit above the offered rate"
            )
        interval_ms = 1000 / step["rate"]
        if step["send_lag_ms"] > max(50.0, 2 * interval_ms):
            out.append(
                f"step {step['step']}: senders fell {step['send_lag_ms']:.0f} ms behind "
                f"schedule: the offered rate was not fully reached"
            )
    if opts.saturate and result.get("knee") is not None and not result["knee"]["reached"]:
        out.append("saturation: every step met the bound; raise --rate or --max-steps")
    if opts.saturate and result.get("steps") and result.get("knee") is None:
        out.append("saturation: the first step already failed the bound; lower --rate")
    cpus = os.cpu_count() or 1
    if result["client"]["procs"] >= cpus:
        out.append(
            f"{result['client']['procs']} load processes on {cpus} CPUs: "
            "they compete with the server for the same cores"
        )
    if result["connect"]["failed"]:
        out.append(
            f"{result['connect']['failed']} connections failed: {result['connect']['failures']}"
        )
    return out
