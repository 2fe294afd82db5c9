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
