"""A client that stops reading while others receive a flood: it is disconnected (4008)
once its pending output passes --max-pending, and the others' latency does not move."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from websockets.asyncio.client import ClientConnection

from support.harden_helpers import http_get
from support.helpers import ServeProcess, client, recv_type
from support.metrics import metric
from support.raw_clients import stalled_client

ROOM = "flood"
PAYLOAD = "x" * 1000


async def flood(ws: ClientConnection, n: int, tag: str, window: int = 64) -> None:
    """Send ``n`` messages with their send time, at most ``window`` unacked."""
    sent = acked = 0
    while acked < n:
        while sent < n and sent - acked < window:
            text = f"{tag} {sent} {time.perf_counter():.6f} {PAYLOAD}"
            await ws.send(json.dumps({"message": text, "client_id": f"{tag}-{sent}"}))
            sent += 1
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] == "ack":
            acked += 1
        elif frame["type"] == "error":
            raise AssertionError(frame)


async def listen(ws: ClientConnection, n: int, tag: str, latencies: list[float]) -> None:
    got = 0
    while got < n:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if frame["type"] != "message":
            continue
        parts = frame["message"].split(" ", 3)
        if parts[0] == tag:
            latencies.append(time.perf_counter() - float(parts[2]))
            got += 1


async def phase(port: int, listeners: list[ClientConnection], n: int, tag: str) -> list[float]:
    latencies: list[float] = []
    async with client(port, ROOM, "flooder") as sender:
        await recv_type(sender, "welcome")
        await asyncio.gather(
            flood(sender, n, tag), *(listen(w, n, tag, latencies) for w in listeners)
        )
    return latencies


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def test_stalled_reader_is_cut_off_and_others_keep_their_latency() -> None:
    max_pending = 256 * 1024
    proc = ServeProcess(
        "--max-pending", str(max_pending), "--rate-limit", "0", "--user-rate-limit", "0"
    ).start()
    report: dict[str, Any] = {}
    try:
        listeners = []
        for i in range(3):
            cm = client(proc.port, ROOM, f"listener{i}")
            listeners.append((cm, await cm.__aenter__()))
        conns = [ws for _, ws in listeners]
        for ws in conns:
            await recv_type(ws, "welcome")

        n = 3000  # 3 MB per listener per phase
        # the first flood of a process is slower (allocations, caches): measure from the second
        await phase(proc.port, conns, n, "warmup")
        baseline = await phase(proc.port, conns, n, "base")

        stalled = stalled_client(proc.port)
        started = time.monotonic()
        loaded = await phase(proc.port, conns, n, "load")
        # the stalled client's kernel buffers (up to ~4 MB here) fill before its pending output
        # grows in the server; keep flooding until the server cuts it off
        for round_ in range(10):
            _, _, body = await http_get(proc.port, "/metrics")
            if metric(body.decode(), "chatctl_slow_consumer_disconnects_total") >= 1:
                break
            loaded += await phase(proc.port, conns, n, f"more{round_}")
        disconnected_after = time.monotonic() - started
        _, _, body = await http_get(proc.port, "/metrics")
        assert metric(body.decode(), "chatctl_slow_consumer_disconnects_total") == 1
        for _ in range(50):  # the TCP connection is aborted CLOSE_GRACE (2 s) later
            _, _, body = await http_get(proc.port, "/metrics")
            if metric(body.decode(), "chatctl_connections") == 3:
                break
            await asyncio.sleep(0.1)
        assert metric(body.decode(), "chatctl_connections") == 3

        # its socket is gone: after reading what was buffered it sees EOF or a reset
        stalled.settimeout(5)
        received = 0
        try:
            while chunk := stalled.recv(1 << 20):
                received += len(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        stalled.close()

        after = await phase(proc.port, conns, n, "after")
        for cm, _ in listeners:
            await cm.__aexit__(None, None, None)
    finally:
        proc.stop()
    for name, lat in (("baseline", baseline), ("stalled", loaded), ("after", after)):
        report[name] = (round(p(lat, 50) * 1000, 2), round(p(lat, 99) * 1000, 2))
    print(
        f"\nlatency ms (p50, p99): {report}; cut off after {disconnected_after:.2f}s, "
        f"{received} bytes were in flight to it"
    )
    # A server held up by the stalled reader delays everyone by seconds (or never delivers:
    # listen() times out); a shared machine's load moves these figures several-fold (at load
    # 22 the p50 went 23 -> 126 ms with nothing held up). The figures themselves are
    # measured quietly in docs/security.md, not asserted here.
    base50, base99 = report["baseline"]
    for name in ("stalled", "after"):
        p50, p99 = report[name]
        assert p50 <= max(10 * base50, base50 + 250), report
        assert p99 <= max(10 * base99, base99 + 1000), report
    assert "slow consumer disconnected" in proc.read_log()
