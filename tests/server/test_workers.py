"""``chatctl serve --workers N``: real supervisor and worker processes on one port, a real
redis-server, real websockets clients. Waits are on log lines, frames and process exits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack

import pytest
from websockets.exceptions import ConnectionClosed

from support.helpers import (
    RedisServer,
    ServeProcess,
    chatctl_env,
    client,
    free_port,
    recv_messages,
    recv_type,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


class Workers(ServeProcess):
    """``chatctl serve --workers 2`` with a status port per worker; ready once the supervisor
    says every worker listens."""

    def __init__(self, redis: RedisServer, count: int = 2, *, port: int | None = None) -> None:
        self.status = free_ports(count)
        super().__init__(
            "--workers",
            str(count),
            "--worker-status-port",
            str(self.status),
            "--redis-url",
            redis.url,
            "--drain-timeout",
            "5",
            port=port,
        )
        self.count = count

    def start(self, timeout: float = 30) -> Workers:
        super().start(timeout)
        wait_until(lambda: "workers listening" in self.read_log(), timeout)
        return self

    def pids(self) -> list[int]:
        """The worker pids the supervisor announced at start."""
        found = re.findall(r"pids \[([\d, ]+)\]", self.read_log())
        return [int(p) for p in found[-1].split(",")]

    def status_of(self, worker: int, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.status + worker - 1}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except urllib.error.URLError as exc:  # not listening (a worker being restarted)
            return 0, str(exc.reason)

    def connections(self, worker: int) -> int:
        _, text = self.status_of(worker, "/metrics")
        match = re.search(r"^chatctl_connections (\S+)$", text, flags=re.M)
        assert match, text
        return int(float(match.group(1)))


def free_ports(count: int) -> int:
    """A port P such that P, P+1, … P+count-1 are free (the workers' status ports)."""
    while True:
        base = free_port()
        if base + count <= 65536 and all(_free(base + i) for i in range(1, count)):
            return base


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def workers(redis: RedisServer) -> Iterator[Workers]:
    proc = Workers(redis).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_workers_need_redis() -> None:
    for args in (["--workers", "2"], ["--workers", "0", "--redis-url", "memory://"]):
        out = subprocess.run(
            [sys.executable, "-m", "chatctl", "serve", "--port", str(free_port()), *args],
            env=chatctl_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 2, out
        lines = out.stderr.strip().splitlines()
        assert lines[-1].startswith("chatctl: --workers needs --redis-url"), out.stderr
        assert "Traceback" not in out.stderr


async def test_workers_act_as_one_server_on_one_port(workers: Workers) -> None:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(client(workers.port, "lobby", f"u{i}"))
            for i in range(16)
        ]
        for ws in clients:
            await recv_type(ws, "welcome")
        # the kernel spread the connections over both workers
        counts = [workers.connections(k) for k in (1, 2)]
        assert sum(counts) == 16 and min(counts) > 0, counts
        await clients[0].send(json.dumps({"type": "message", "message": "hi", "client_id": "a"}))
        await clients[-1].send(json.dumps({"type": "message", "message": "yo", "client_id": "b"}))
        got = [[(m["id"], m["message"]) for m in await recv_messages(ws, 2)] for ws in clients]
        assert all(g == got[0] for g in got) and sorted(t for _, t in got[0]) == ["hi", "yo"]
    for k in (1, 2):
        assert workers.status_of(k, "/healthz") == (200, "ok\n")
        assert workers.status_of(k, "/other")[0] == 404


async def test_a_dead_worker_is_restarted_and_logged(workers: Workers) -> None:
    first, second = workers.pids()
    os.kill(second, signal.SIGKILL)
    wait_until(lambda: "killed by SIGKILL: restarting it" in workers.read_log(), 10)
    wait_until(lambda: workers.status_of(2, "/healthz")[0] == 200, 15)
    assert f"worker 2 (pid {second}) killed by SIGKILL" in workers.read_log()
    os.kill(first, 0)  # the other worker was left alone
    async with client(workers.port, "after", "alice") as ws:
        await recv_type(ws, "welcome")
    assert workers.proc is not None and workers.proc.poll() is None


async def test_sigterm_drains_every_worker(workers: Workers) -> None:
    pids = workers.pids()
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(client(workers.port, "room", f"u{i}")) for i in range(8)
        ]
        for ws in clients:
            await recv_type(ws, "welcome")
        assert min(workers.connections(k) for k in (1, 2)) > 0
        assert workers.proc is not None
        workers.proc.send_signal(signal.SIGTERM)
        codes = []
        for ws in clients:
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert ws.close_code is not None
            codes.append(ws.close_code)
        assert set(codes) == {1012}, codes
    assert await asyncio.to_thread(workers.proc.wait, 15) == 0, workers.read_log()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "SIGTERM: stopping 2 workers" in workers.read_log()


async def test_sighup_reloads_every_workers_key_and_stops_nothing(workers: Workers) -> None:
    async with client(workers.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        assert workers.proc is not None
        workers.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: workers.read_log().count("token key reloaded") == workers.count, 10)
        await ws.send(json.dumps({"type": "ping", "data": 1}))
        assert (await recv_type(ws, "pong"))["data"] == 1  # not drained
    assert workers.proc.poll() is None and "stopping" not in workers.read_log()
    async with client(workers.port, "lobby", "bob") as ws:
        await recv_type(ws, "welcome")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_workers_stop_when_their_supervisor_is_killed(redis: RedisServer) -> None:
    """A SIGKILLed supervisor cannot pass anything on: its workers notice by themselves
    (issue 22, item 9), drain and free the port for the next server."""
    first = Workers(redis).start()
    try:
        pids = first.pids()
        async with client(first.port, "lobby", "alice") as ws:
            await recv_type(ws, "welcome")
            assert first.proc is not None
            first.proc.kill()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(recv_type(ws, "never"), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        wait_until(lambda: not any(alive(pid) for pid in pids), 10)
        assert time.monotonic() - started < 3, "the workers took too long to stop"
    finally:
        first.stop()
    again = Workers(redis, port=first.port).start()  # the port is free for the next one
    try:
        async with client(again.port, "lobby", "bob") as ws:
            await recv_type(ws, "welcome")
    finally:
        assert again.stop() == 0


async def test_a_second_supervisor_on_a_held_port_says_so_and_exits_2(workers: Workers) -> None:
    out = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "chatctl",
            "serve",
            "--port",
            str(workers.port),
            "--workers",
            "2",
            "--redis-url",
            "redis://127.0.0.1:1/0",
        ],
        env=chatctl_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"chatctl: cannot listen on 127.0.0.1:{workers.port}: Address already in use"
    ), out.stderr
    assert "Traceback" not in out.stderr and "workers listening" not in out.stderr
    async with client(workers.port, "lobby", "alice") as ws:  # the first one is untouched
        await recv_type(ws, "welcome")
    assert workers.proc is not None and workers.proc.poll() is None
