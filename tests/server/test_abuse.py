"""Abuse against a real ``chatctl serve`` process, bounded and on loopback only.

While one honest sender/listener pair measures its latency and counts its acked messages,
other clients send thousands of malformed, oversized, non-UTF-8 and binary frames, one floods
as fast as it can, handshakes never finish and connections never read. The server must stay
up, the honest pair keep its latency and every acked message, and the server's memory come
back near its baseline. The figures printed here are recorded in docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import statistics
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from support.harden_helpers import http_get, rss_kib
from support.helpers import ServeProcess, client, recv_type
from support.metrics import metric
from support.raw_clients import stalled_client

SERVER_ARGS = (
    *("--rate-limit", "200", "--rate-burst", "400", "--user-rate-limit", "0"),
    *("--max-pending", "65536", "--handshake-timeout", "4", "--max-frame", "65536"),
    *("--drain-timeout", "3"),
)
MALFORMED: list[str | bytes] = [
    "not json",
    "{",
    "[1,2,3]",
    '"just a string"',
    "{}",
    '{"type": 42}',
    '{"type": "bogus"}',
    '{"type": "message"}',
    '{"type": "message", "message": 7}',
    '{"type": "message", "message": "   "}',
    '{"type": "message", "message": "x", "kind": "shout"}',
    '{"type": "message", "message": "x", "client_id": ""}',
    '{"message": "bad \\ud800 surrogate"}',
    "[" * 5000,
    '{"message": "' + "y" * 9000 + '"}',  # over --max-message (8000 characters)
    b"\x00\x01binary",
    b"",
]


async def honest_pair(port: int, seconds: float) -> dict[str, Any]:
    """Run the honest pair for ``seconds`` in its own process (so the attackers' client-side
    work in this process does not show up in its latency) and return what it saw."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).parents[1] / "support" / "honest_pair.py"),
        str(port),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 30)
    assert proc.returncode == 0
    result: dict[str, Any] = json.loads(out)
    result["acked"] = set(result["acked"])
    return result


async def malformed_sender(port: int, n: int, user: str) -> int:
    """Send ``n`` malformed frames; return how many error frames came back."""
    errors = 0
    async with client(port, "malformed", user) as ws:
        await recv_type(ws, "welcome")
        for _ in range(n):
            await ws.send(random.choice(MALFORMED))
        with contextlib.suppress(TimeoutError):
            while errors < n:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                errors += frame["type"] == "error"
    return errors


async def closes_with(port: int, user: str, payload: str | bytes, text: bool | None) -> int:
    """Send one frame that should make the server close the connection; return the code."""
    async with client(port, "abuse", user, max_size=None) as ws:
        await recv_type(ws, "welcome")
        await ws.send(payload, text=text)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code
    raise AssertionError("not closed")


async def flooder(port: int) -> tuple[int, int]:
    """Send as fast as possible until closed: (frames sent, close code)."""
    sent = 0
    async with client(port, "flood", "flooder") as ws:
        await recv_type(ws, "welcome")

        async def drain(conn: ClientConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in conn:
                    pass

        reader = asyncio.create_task(drain(ws))
        try:
            while sent < 20000:
                await ws.send('{"message": "flood"}')
                sent += 1
                if sent % 100 == 0:
                    await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        await asyncio.wait_for(reader, 5)
        return sent, ws.close_code or 0


def slowloris(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /ws/lobby HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        socks.append(s)
    return socks


async def broadcaster(port: int, user: str, n: int) -> None:
    text, run = "z" * 7900, random.randrange(1 << 30)  # ids are de-duplicated across rounds
    async with client(port, "abuse", user) as ws:
        await recv_type(ws, "welcome")
        for i in range(n):
            await ws.send(json.dumps({"message": text, "client_id": f"{run}-{i}"}))
            await recv_type(ws, "ack")


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


async def attack(port: int, stats: dict[str, Any]) -> None:
    """One round of every attack at once; what the attackers saw goes into ``stats``."""
    started = time.monotonic()
    # connections that never read, in the room the broadcasters fill
    stalled = [stalled_client(port, f"stalled{i}", room="abuse") for i in range(10)]
    loris = await asyncio.to_thread(slowloris, port, 100)
    malformed = [malformed_sender(port, 300, f"malformed{i}") for i in range(10)]
    oversized = [closes_with(port, f"big{i}", "x" * 100_000, True) for i in range(20)]
    non_utf8 = [closes_with(port, f"utf{i}", b"\xff\xfe\xfd", True) for i in range(20)]
    binary = [closes_with(port, f"bin{i}", b"\x00" * 70_000, False) for i in range(5)]
    took: dict[str, float] = {}

    async def timed(name: str, aw: Awaitable[Any]) -> Any:
        t0 = time.monotonic()
        try:
            return await aw
        finally:
            took[name] = round(time.monotonic() - t0, 2)

    results = await asyncio.gather(
        timed("malformed", asyncio.gather(*malformed)),
        timed("oversized", asyncio.gather(*oversized)),
        timed("non_utf8", asyncio.gather(*non_utf8)),
        timed("binary", asyncio.gather(*binary)),
        timed("flood", flooder(port)),
        timed("broadcast", asyncio.gather(*(broadcaster(port, f"bc{i}", 250) for i in range(4)))),
    )
    stats["took_s"] = took
    errors, big_codes, utf_codes, bin_codes, (flood_sent, flood_code), _ = results
    stats["attack_s"] = round(time.monotonic() - started, 1)
    # the slowloris handshakes are dropped after --handshake-timeout (4 s: at 2 s a busy CI
    # machine once kept the server from answering the flooder's own handshake in time)
    await asyncio.sleep(max(0.0, 4.5 - (time.monotonic() - started)))
    dropped = 0
    for s in loris:
        s.settimeout(0.5)
        try:
            dropped += s.recv(1) == b""
        except (ConnectionResetError, TimeoutError):
            dropped += 1
        s.close()
    for s in stalled:
        s.close()
    stats.update(
        malformed_error_frames=sum(errors),
        oversized_close=sorted(set(big_codes)),
        non_utf8_close=sorted(set(utf_codes)),
        binary_close=sorted(set(bin_codes)),
        flood_sent_before_close=flood_sent,
        flood_close=flood_code,
        slowloris_dropped=dropped,
    )


def pct(run: dict[str, Any]) -> tuple[float, float]:
    return round(p(run["latencies"], 50), 2), round(p(run["latencies"], 99), 2)


async def test_server_survives_abuse_and_keeps_honest_clients_whole() -> None:
    proc = ServeProcess(*SERVER_ARGS).start()
    assert proc.proc is not None
    pid = proc.proc.pid
    rounds: list[dict[str, Any]] = []
    try:
        quiet = await honest_pair(proc.port, 1.5)
        rss = [rss_kib(pid)]
        for _ in range(2):  # twice: what the first round leaves, the second must not add to
            stats: dict[str, Any] = {}
            honest = asyncio.create_task(honest_pair(proc.port, 2.0))
            await asyncio.sleep(0.5)  # connected and sending
            await attack(proc.port, stats)
            stats["honest"] = await honest
            rounds.append(stats)
            await asyncio.sleep(0.5)
            rss.append(rss_kib(pid))
        status, _, _ = await http_get(proc.port, "/healthz")
        _, _, body = await http_get(proc.port, "/metrics")
        text = body.decode()
        slow = metric(text, "chatctl_slow_consumer_disconnects_total")
        policy = metric(text, "chatctl_policy_closes_total")
        connections = metric(text, "chatctl_connections")
        after = await honest_pair(proc.port, 1.5)
    finally:
        assert proc.stop() == 0  # still alive, and stops cleanly
        log_bytes = len(proc.read_log())

    figures = {
        **{k: v for k, v in rounds[0].items() if k != "honest"},
        "malformed_frames": 3000,
        "stalled_cut_off": f"{int(slow)}/20",
        "honest_p50_p99_ms": {
            "quiet": pct(quiet),
            "attack1": pct(rounds[0]["honest"]),
            "attack2": pct(rounds[1]["honest"]),
            "after": pct(after),
        },
        "honest_acked_during_attacks": sum(len(r["honest"]["acked"]) for r in rounds),
        "rss_kib_before_round1_round2": rss,
        "server_log_bytes": log_bytes,
    }
    print("\nabuse figures:", json.dumps(figures))

    assert status == 200 and connections == 0
    for stats in rounds:
        assert stats["malformed_error_frames"] == 3000  # each answered, no connection closed
        assert stats["oversized_close"] == [1009]
        assert stats["non_utf8_close"] == [1007]
        assert stats["binary_close"] == [1009]  # 70 KB binary frames: over --max-frame
        assert stats["flood_close"] == 1008
        assert stats["slowloris_dropped"] == 100
    assert policy == 2 and slow == 20
    for run in (quiet, *(r["honest"] for r in rounds), after):  # nothing acked lost or doubled
        assert not run.get("errors"), run.get("errors")
        assert set(run["delivered"]) >= run["acked"]
        assert len(run["delivered"]) == len(set(run["delivered"]))
    # after the attack the server serves as before: a server left stalled or thrashing
    # answers in seconds; other tests beside this one on 2 cores move a p99 several-fold
    # (198 ms against a quiet 8.5 ms once in CI, with nothing wrong); quiet figures are in
    # docs/security.md
    assert p(after["latencies"], 50) < max(5 * p(quiet["latencies"], 50), 20)
    assert p(after["latencies"], 99) < max(10 * p(quiet["latencies"], 99), 500)
    assert rss[1] - rss[0] < 30 * 1024, figures  # the allocator keeps some of the peak
    assert rss[2] - rss[1] < 8 * 1024, figures  # but a second round does not grow it: no leak
