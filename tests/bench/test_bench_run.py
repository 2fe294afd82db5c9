"""Short bench runs against servers whose behaviour is known: the report's accounting must
match it exactly. No timing assertions: latency figures are only checked to exist."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, broadcast, serve

from chatctl.bench.options import BenchOptions
from chatctl.bench.report import text_lines
from chatctl.bench.runner import run_bench
from chatctl.cli import main
from support.helpers import SECRET, ServeProcess

Relay = Callable[[int, str], list[str]]


def drop_every_10th(n: int, data: str) -> list[str]:
    """The n-th message of a room (1-based) is relayed unless n is a multiple of 10."""
    return [] if n % 10 == 0 else [data]


def duplicate_every_5th(n: int, data: str) -> list[str]:
    return [data, data] if n % 5 == 0 else [data]


class SwapPairs:
    """Hold each odd-numbered message and send it after the next one: every pair swapped."""

    def __init__(self) -> None:
        self.held: str | None = None

    def __call__(self, n: int, data: str) -> list[str]:
        if n % 2 == 1:
            self.held = data
            return []
        held, self.held = self.held, None
        return [data] if held is None else [data, held]


@asynccontextmanager
async def relay_server(relay: Relay, *, welcome: bool = True) -> AsyncIterator[int]:
    """A minimal room relay (like bench/reference_server.py) that applies ``relay`` to the
    n-th message of each room; ``welcome=False`` sends no welcome frame at all."""
    rooms: dict[str, set[ServerConnection]] = {}
    counts: dict[str, int] = {}

    async def handler(conn: ServerConnection) -> None:
        assert conn.request is not None
        room = conn.request.path
        members = rooms.setdefault(room, set())
        members.add(conn)
        if welcome:
            await conn.send('{"type":"welcome"}')
        try:
            async for data in conn:
                assert isinstance(data, str)
                counts[room] = counts.get(room, 0) + 1
                for frame in relay(counts[room], data):
                    broadcast(members, frame)
        finally:
            members.discard(conn)

    async with serve(handler, "127.0.0.1", 0) as server:
        yield next(iter(server.sockets)).getsockname()[1]


def options(port: int, **kw: Any) -> BenchOptions:
    base: dict[str, Any] = dict(
        servers=(f"ws://127.0.0.1:{port}",),
        rooms=2,
        clients=5,
        senders=1,
        rate=40.0,
        duration=0.5,
        drain=0.5,
        procs=1,
    )
    base.update(kw)
    return BenchOptions(**base)


async def test_dropping_server_shows_ten_percent_lost() -> None:
    async with relay_server(drop_every_10th) as port:
        result = await run_bench(options(port))
    (step,) = result["steps"]
    assert step["sent"] == 2 * 20  # 2 rooms x 1 sender x 40/s x 0.5 s
    assert step["expected"] == 2 * 20 * 5
    assert step["lost"] == 2 * 2 * 5  # messages 10 and 20 of each room, to 5 clients
    assert step["loss_ratio"] == pytest.approx(0.10)
    assert step["delivered"] == step["expected"] - step["lost"]
    assert step["duplicates"] == 0
    assert step["out_of_order"] == 0
    assert step["ok"] is False
    assert step["latency_ms"]["count"] == step["delivered"]
    assert result["connect"]["connected"] == 10 and result["connect"]["failed"] == 0


async def test_duplicating_server_without_welcome() -> None:
    async with relay_server(duplicate_every_5th, welcome=False) as port:
        result = await run_bench(options(port, rooms=1, senders=2))
    (step,) = result["steps"]
    assert result["connect"]["welcomed"] == 0
    assert step["sent"] == 2 * 20
    assert step["lost"] == 0
    assert step["duplicates"] == (40 // 5) * 5  # every 5th room message, to 5 clients
    assert step["delivered"] == step["expected"] == 40 * 5


async def test_saturation_stops_at_the_first_step_with_loss() -> None:
    async with relay_server(drop_every_10th) as port:
        result = await run_bench(
            options(port, rooms=1, rate=10.0, duration=0.5, saturate=True, max_steps=4)
        )
    # 5 messages per step: the first step loses nothing, the second sends messages 6-10+
    steps = result["steps"]
    assert steps[0]["lost"] == 0
    assert steps[-1]["lost"] > 0
    assert result["knee"] is not None and result["knee"]["rate"] == steps[-2]["rate"]


def test_real_chatctl_serve_loses_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServeProcess().start()  # logs "listening on" at info: keep the run small
    try:
        monkeypatch.setenv("CHATCTL_SECRET", SECRET.decode())
        assert server.proc is not None
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    "bench",
                    "--server",
                    f"ws://127.0.0.1:{server.port}",
                    "--rooms",
                    "2",
                    "--clients",
                    "6",
                    "--senders",
                    "2",
                    "--rate",
                    "20",
                    "--duration",
                    "1",
                    "--drain",
                    "2",
                    "--procs",
                    "2",
                    "--server-pid",
                    str(server.proc.pid),
                    "--json",
                ]
            )
    finally:
        server.stop()
    result = json.loads(capsys.readouterr().out)
    (step,) = result["steps"]
    assert result["connect"] == result["connect"] | {"connected": 12, "failed": 0}
    assert result["connect"]["welcomed"] == 12
    # the time from the connect burst to each welcome, and the frames the connecting cost
    welcome_ms = result["connect"]["welcome_ms"]
    assert 0 < welcome_ms["p50"] <= welcome_ms["max"] and result["connect"]["frames"] >= 12
    assert step["sent"] == 2 * 2 * 20
    assert step["expected"] == 2 * 2 * 20 * 6
    assert step["lost"] == 0 and step["duplicates"] == 0 and step["out_of_order"] == 0
    assert step["acks"] == step["sent"]
    assert result["memory"]["per_connection_kib"] is not None
    assert exit_info.value.code in (0, 1)  # 1 only if p99 passed the bound on a busy machine


async def test_clients_spread_over_two_unconnected_servers() -> None:
    """Two relays that share nothing: the half of the room on the other node gets nothing."""
    async with relay_server(lambda n, d: [d]) as a, relay_server(lambda n, d: [d]) as b:
        opts = options(a, rooms=1, clients=4)
        opts = BenchOptions(
            **{**opts.__dict__, "servers": (opts.servers[0], f"ws://127.0.0.1:{b}")}
        )
        result = await run_bench(opts)
    (step,) = result["steps"]
    assert step["expected"] == 20 * 4
    assert step["lost"] == 20 * 2  # clients 1 and 3 are on the sender's other node
    assert step["loss_ratio"] == pytest.approx(0.5)


async def test_swapping_server_shows_out_of_order_but_no_loss() -> None:
    async with relay_server(SwapPairs()) as port:
        result = await run_bench(options(port, rooms=1))
    (step,) = result["steps"]
    assert step["sent"] == 20
    assert step["lost"] == 0
    assert step["duplicates"] == 0
    assert step["out_of_order"] == 10 * 5  # 10 swapped pairs, to 5 clients


def test_exit_status_says_why_nothing_connected(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServeProcess().start()
    try:
        monkeypatch.setenv("CHATCTL_SECRET", "another-secret-0123456789abcdefghijklmnop")
        with pytest.raises(SystemExit) as refused:
            main(
                [
                    "bench",
                    "--server",
                    f"ws://127.0.0.1:{server.port}",
                    "--clients",
                    "2",
                    "--duration",
                    "0.2",
                ]
            )
    finally:
        server.stop()
    assert refused.value.code == 3
    assert "HTTP 401" in capsys.readouterr().err
    with pytest.raises(SystemExit) as unreachable:  # nothing listens there any more
        main(
            [
                "bench",
                "--server",
                f"ws://127.0.0.1:{server.port}",
                "--clients",
                "2",
                "--duration",
                "0.2",
                "--connect-timeout",
                "2",
            ]
        )
    assert unreachable.value.code == 4


async def test_write_only_senders_are_not_sent_the_room() -> None:
    """``--write-only``: the senders connect as ``chatctl send`` does, get their acks, and
    the room's messages reach only the other clients (the fan-out the server saves)."""
    from support.helpers import make_server

    srv = make_server()
    async with srv:
        opts = BenchOptions(
            servers=(f"ws://127.0.0.1:{srv.port}",),
            clients=5,
            senders=2,
            rate=20,
            duration=1,
            drain=2,
            secret=SECRET,
            write_only=True,
        )
        result = await run_bench(opts)
    (step,) = result["steps"]
    assert step["sent"] == 2 * 20 and step["acks"] == step["sent"]
    assert step["receivers"] == 3
    assert step["expected"] == step["delivered"] == 2 * 20 * 3
    assert step["lost"] == 0 and step["duplicates"] == 0
    # the server wrote the messages to the 3 readers (and their presence joins), never to
    # the senders: 2 * 20 * 5 deliveries otherwise
    assert 2 * 20 * 3 <= srv.metrics.counters.deliveries < 2 * 20 * 3 + 10


async def test_refused_senders_are_reported_not_hidden_in_the_loss() -> None:
    """A rate limit under the offered rate: the node holds back a refused sender's later
    messages, and the report says why so much was lost and what to change."""
    from chatctl.server.limits import RateSettings
    from support.helpers import make_server

    srv = make_server(rates=RateSettings(conn_rate=5, conn_burst=5))
    async with srv:
        opts = BenchOptions(
            servers=(f"ws://127.0.0.1:{srv.port}",),
            clients=2,
            senders=1,
            rate=40,
            duration=1,
            drain=1,
            secret=SECRET,
        )
        result = await run_bench(opts)
    (step,) = result["steps"]
    assert step["other_frames"]["error:rate_limited"] >= 30
    assert step["acks"] == 5 and step["lost"] == (step["sent"] - 5) * 2
    assert any("raise the server's --rate-limit" in w for w in result["warnings"])


def relay_all(n: int, data: str) -> list[str]:
    return [data]


async def test_at_knee_runs_one_more_step_at_the_fraction_of_the_knee() -> None:
    async with relay_server(relay_all) as port:
        result = await run_bench(
            options(port, rooms=1, rate=8.0, saturate=True, max_steps=2, at_knee=0.6)
        )
    steps = result["steps"]
    assert [s["rate"] for s in steps] == [8.0, 10.0]
    knee = result["knee"]
    assert knee is not None and knee["rate"] == 10.0 and knee["reached"] is False
    at = result["at_knee"]
    assert at["fraction"] == 0.6 and at["knee_rate"] == 10.0 and at["rate"] == 6.0
    step = at["step"]
    assert step["rate"] == 6.0 and step["step"] == steps[-1]["step"] + 1
    assert step["sent"] == 3  # 6/s for 0.5 s
    assert step["lost"] == 0 and step["expected"] == step["sent"] * 5
    assert step["late"] == 0  # nothing of the saturation's steps counted in it
    assert any(
        line.startswith("at 0.6 of the knee: step 2: rate 6/s") for line in text_lines(result)
    )


def test_at_knee_needs_saturate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--server", "ws://127.0.0.1:9", "--at-knee", "0.6"])
    assert exit_info.value.code == 2
    assert "--at-knee needs --saturate" in capsys.readouterr().err


def test_at_knee_against_a_real_server_reports_loop_lag_and_cpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServeProcess().start()
    try:
        monkeypatch.setenv("CHATCTL_SECRET", SECRET.decode())
        assert server.proc is not None
        with pytest.raises(SystemExit) as exit_info:
            main(
                [
                    *("bench", "--server", f"ws://127.0.0.1:{server.port}"),
                    *("--rooms", "1", "--clients", "4", "--rate", "20", "--duration", "1"),
                    *("--drain", "1", "--saturate", "--max-steps", "2", "--at-knee", "0.5"),
                    *("--server-pid", str(server.proc.pid), "--json"),
                ]
            )
    finally:
        server.stop()
    result = json.loads(capsys.readouterr().out)
    at = result["at_knee"]
    assert at["rate"] == round(result["knee"]["rate"] * 0.5, 2)
    step = at["step"]
    assert step["sent"] == pytest.approx(at["rate"], abs=1) and step["lost"] == 0
    assert step["server"]["cpu_us_per_delivery"] is not None
    assert step["server"]["loop_lag"]["samples"] > 0  # the 50 ms sampler over 1 s
    assert exit_info.value.code == (0 if step["ok"] else 1)
