"""`chatctl send` keeps stdin order through every failure, against every broker.

Real processes only: ``chatctl serve`` nodes, a ``redis-server`` the test restarts, a
``chatctl send`` fed line by line while the failure happens, and a ``chatctl join --json``
receiver (on another node where there are two). Each test asserts what the user sees:
every line exactly once, in stdin order, ``send`` exits 0 and is never closed with 1008.

The ``backend`` fixture runs each test against every broker of ``chatctl.broker.BROKERS``
that the test applies to (multi-node tests need a broker shared between nodes; a broker
restart needs one that runs as a service). A broker added to the registry needs
nothing here: its registry entry's ``test`` hook says how to start it.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from chatctl.broker import BROKERS
from chatctl.broker.registry import Service
from support.broker_services import BrokerServices, entry_named, own_redis_servers, serve_flags
from support.client_helpers import CHATCTL, client_env
from support.helpers import ServeProcess

pytestmark = pytest.mark.slow
ROOM = "ops"


@dataclass
class Backend:
    """How to run ``chatctl serve`` nodes on one broker."""

    name: str
    args: list[str]
    #: nodes started with ``args`` share rooms (a node can die while another delivers)
    shared: bool
    #: the service behind the broker, for a restart test (None: it lives in the node, or
    #: restarting it is a test of its own, as a Redis Cluster failover)
    service: Service | None = None


@pytest.fixture(params=[entry.name for entry in BROKERS])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each registered broker, as its registry entry's test hook starts it."""
    entry = entry_named(request.param)
    with own_redis_servers() as redis:
        target = entry.test(BrokerServices(request, redis))
        yield Backend(entry.name, serve_flags(target), entry.shared, target.service)


#: brokers whose nodes share rooms (a node can die while another delivers), from the registry
SHARED = [entry.name for entry in BROKERS if entry.shared]
#: brokers with one service behind them that a test can stop and start again (a Redis
#: Cluster failover is a test of its own: tests/broker/test_redis_cluster_e2e.py)
RESTARTABLE = [entry.name for entry in BROKERS if entry.restartable]


def _one_per_publish_path() -> list[str]:
    """One broker for each way of publishing (its class's ``publish`` and ``publish_nowait``):
    a one-node test of the server's rate limits or of a stalled node depends on that, not on
    where the broker keeps rooms (a Redis Cluster publishes as one Redis does)."""
    seen: dict[tuple[object, object], str] = {}
    for entry in BROKERS:
        cls: Any = entry.load()
        seen.setdefault((cls.publish, getattr(cls, "publish_nowait", None)), entry.name)
    return list(seen.values())


PUBLISH_PATHS = _one_per_publish_path()


# ----------------------------------------------------------------------------- processes


class Sender:
    """``chatctl send ROOM --json`` fed ``lines`` at ``rate`` lines/s from a thread."""

    def __init__(
        self, port: int, lines: list[str], *, user: str = "alice", rate: float = 1000
    ) -> None:
        self.lines = lines
        self.proc = subprocess.Popen(
            [*CHATCTL, "send", ROOM, "--json"],
            env=client_env(port, user=user),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.acks = 0
        self._acked = threading.Condition()
        self._stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._feed, args=(rate,), daemon=True),
            threading.Thread(target=self._read_acks, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _feed(self, rate: float) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        chunk = max(1, int(rate / 50))  # 50 writes a second
        try:
            for i in range(0, len(self.lines), chunk):
                stdin.write("".join(line + "\n" for line in self.lines[i : i + chunk]))
                stdin.flush()
                time.sleep(chunk / rate)
            stdin.close()
        except BrokenPipeError:
            pass  # the sender died: its exit status says why

    def _read_acks(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            assert json.loads(line)["type"] == "ack"
            with self._acked:
                self.acks += 1
                self._acked.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def wait_acks(self, n: int, timeout: float = 30) -> None:
        with self._acked:
            if not self._acked.wait_for(lambda: self.acks >= n, timeout):
                raise AssertionError(f"only {self.acks} acks in {timeout} s: {self.stderr}")

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def finish(self, timeout: float = 90) -> str:
        """Wait for exit 0 with every line acked; its stderr."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for t in self._threads:
            t.join(5)
        assert code == 0, self.stderr
        assert self.acks == len(self.lines), self.stderr
        assert "1008" not in self.stderr, self.stderr  # an honest client is never abusive
        return self.stderr


class Receiver:
    """``chatctl join ROOM --json --since 0 --count N``: the room as a user sees it."""

    def __init__(self, port: int, count: int) -> None:
        self.proc = subprocess.Popen(
            [*CHATCTL, "join", ROOM, "--json", "--since", "0", "--count", str(count)],
            env=client_env(port, user="reader"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def messages(self, timeout: float = 90) -> list[str]:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        frames = [json.loads(line) for line in out.splitlines()]
        return [f["message"] for f in frames if f["type"] == "message"]


def lines(n: int, prefix: str = "line") -> list[str]:
    return [f"{prefix} {i}" for i in range(n)]


def assert_in_order(got: list[str], *streams: list[str]) -> None:
    """Every line of every stream exactly once, each stream in its own order."""
    assert sorted(got) == sorted(line for s in streams for line in s), "lost or doubled"
    for stream in streams:
        place = {line: i for i, line in enumerate(stream)}
        seen = [place[line] for line in got if line in place]
        inversions = sum(1 for a, b in itertools.pairwise(seen) if a > b)
        assert seen == list(range(len(stream))), f"{inversions} inversions of stdin order"


@contextmanager
def with_node(backend: Backend, *args: str) -> Iterator[ServeProcess]:
    """One ``chatctl serve`` node on ``backend`` with extra ``args``."""
    node = ServeProcess(*backend.args, *args).start()
    try:
        yield node
    finally:
        node.stop()


def restart_node(node: ServeProcess, sig: int) -> ServeProcess:
    node.stop(sig, timeout=20)
    return ServeProcess(*node.args, port=node.port, data_dir=node.data_dir).start()


# ----------------------------------------------------------------------------- failures


@pytest.mark.redis
@pytest.mark.parametrize("backend", RESTARTABLE, indirect=True)
def test_broker_restart_mid_stream(backend: Backend) -> None:
    """The broker goes away for a second and comes back: refused lines are re-sent first."""
    assert backend.service is not None
    sent = lines(2000)
    with with_node(backend) as node:
        receiver = Receiver(node.port, len(sent))
        sender = Sender(node.port, sent, rate=1000)
        sender.wait_acks(300)
        backend.service.stop()
        time.sleep(1.5)  # publishes fail meanwhile: broker_unavailable
        backend.service.start()
        sender.finish()
        assert_in_order(receiver.messages(), sent)


@pytest.mark.redis
@pytest.mark.parametrize("backend", SHARED, indirect=True)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_sender_node_dies_while_the_receiver_is_on_another(backend: Backend, sig: int) -> None:
    sent = lines(1500)
    a = ServeProcess(*backend.args).start()
    b = ServeProcess(*backend.args).start()
    try:
        receiver = Receiver(b.port, len(sent))
        sender = Sender(a.port, sent, rate=1000)
        sender.wait_acks(300)
        a = restart_node(a, sig)  # the sender reconnects to it and re-sends what is unacked
        assert "reconnected; re-sending" in sender.finish()
        assert_in_order(receiver.messages(), sent)
    finally:
        a.stop()
        b.stop()


@pytest.mark.parametrize("backend", PUBLISH_PATHS, indirect=True)
def test_per_connection_rate_limit(backend: Backend) -> None:
    """Fed faster than the node allows: paced under the announced limit, in order."""
    sent = lines(400)
    with with_node(backend, "--rate-limit", "300", "--rate-burst", "20") as node:
        receiver = Receiver(node.port, len(sent))
        Sender(node.port, sent, rate=5000).finish()
        assert_in_order(receiver.messages(), sent)


@pytest.mark.parametrize("backend", PUBLISH_PATHS, indirect=True)
def test_two_senders_of_one_user_share_the_user_rate_limit(backend: Backend) -> None:
    """Each is told its share of the user's budget: together they stay under it, each in
    its own order, neither is closed with 1008."""
    a_lines, b_lines = lines(200, "a"), lines(200, "b")
    args = ("--user-rate-limit", "150", "--user-rate-burst", "50", "--rate-limit", "1000")
    with with_node(backend, *args) as node:
        receiver = Receiver(node.port, len(a_lines) + len(b_lines))
        a = Sender(node.port, a_lines, rate=2000)
        b = Sender(node.port, b_lines, rate=2000)
        a.finish()
        b.finish()
        assert_in_order(receiver.messages(), a_lines, b_lines)


@pytest.mark.parametrize("backend", PUBLISH_PATHS, indirect=True)
def test_a_stalled_node_resumes_and_keeps_the_order(backend: Backend) -> None:
    """The node stops answering for 1.5 s (SIGSTOP) while lines keep coming; when it wakes,
    the frames queued meanwhile arrive in a burst over its rate limit."""
    sent = lines(900)
    with with_node(backend, "--rate-limit", "400", "--rate-burst", "50") as node:
        receiver = Receiver(node.port, len(sent))
        sender = Sender(node.port, sent, rate=600)
        sender.wait_acks(200)
        assert node.proc is not None
        node.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        node.proc.send_signal(signal.SIGCONT)
        sender.finish()
        assert_in_order(receiver.messages(), sent)
