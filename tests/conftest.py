"""Fixtures every test can use: an isolated home, in-process servers, redis-server processes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chatctl.server import ChatServer
from support.helpers import RedisServer, make_server, short_leeway_server


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` starts two workers per core: the tests mostly wait on the servers,
    redis-servers and Chromium they start (a serial run keeps one core 40 % busy)."""
    return 2 * (os.cpu_count() or 1)


#: Tests that measure latency or pace under load, or load the machine themselves: under
#: ``--dist loadgroup`` (pyproject's addopts) they run one after another on one xdist worker,
#: never beside each other, while the other workers run the rest of the suite.
TIMING = (
    "tests/server/test_slow_consumer.py",
    "tests/server/test_abuse.py",
    "tests/broker/test_sqlite_faults.py",
    "tests/broker/test_redis_cluster_e2e.py",
    "tests/client/test_send.py::test_a_bulk_send_paces_itself_under_the_advertised_rate_limit",
    "tests/bench/test_chaos.py",
)


#: Slow directories (real browsers, terminals, brokers), handed out right after the timing
#: group: longest first, so that the run does not end with one worker on a long tail.
SLOW_FIRST = ("tests/web/", "tests/ui/", "tests/broker/", "tests/bench/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(TIMING):
            item.add_marker(pytest.mark.xdist_group("timing"))

    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith(TIMING):
            return 0
        for i, prefix in enumerate(SLOW_FIRST, 1):
            if item.nodeid.startswith(prefix):
                return i
        return len(SLOW_FIRST) + 1

    items.sort(key=rank)  # stable: each file's own order is kept


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real ~/.config, ~/.local/state or ~/.local/share, or sees
    CHATCTL_* vars."""
    import os

    for name in list(os.environ):
        if name.startswith("CHATCTL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
async def server() -> AsyncIterator[ChatServer]:
    """An in-process chatctl server with the memory broker on a free port."""
    srv = make_server()
    async with srv:
        yield srv


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on a free port (never the machine's shared one)."""
    redis = RedisServer().start()
    try:
        yield redis
    finally:
        redis.cleanup()


@pytest.fixture
async def leeway_server() -> AsyncIterator[ChatServer]:
    """An in-process server that closes a connection 0.5 s after its token's exp."""
    srv = short_leeway_server(0.5)
    async with srv:
        yield srv
