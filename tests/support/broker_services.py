"""What a broker's test hook (``BrokerEntry.test`` in chatctl.broker.registry) asks for,
provided by the broker suites: this test's tmp_path, redis-servers, the session's Redis
Cluster and fresh key prefixes. The suites read only the registry; this is their side."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from chatctl.broker.registry import BROKERS, BrokerEntry, TestTarget, broker_options
from support.cluster_helpers import LocalCluster
from support.helpers import RedisServer

_names = itertools.count(1)


class BrokerServices:
    """A :class:`chatctl.broker.registry.TestServices` for one test. ``redis`` makes (or
    shares) the redis-server a hook asks for; the suite decides which."""

    def __init__(self, request: pytest.FixtureRequest, redis: Callable[[], RedisServer]):
        self.request = request
        self._redis = redis

    @property
    def tmp_path(self) -> Path:
        path: Path = self.request.getfixturevalue("tmp_path")
        return path

    def redis_server(self) -> RedisServer:
        pytest.importorskip("chatctl.broker.redis", reason="the Redis broker is not built")
        return self._redis()

    def redis_cluster(self) -> str:
        cluster: LocalCluster = self.request.getfixturevalue("redis_cluster")  # broker/conftest
        return cluster.url

    def namespace(self) -> str:
        return f"t{next(_names)}"


def entry_named(name: str) -> BrokerEntry:
    (entry,) = (e for e in BROKERS if e.name == name)
    return entry


@contextmanager
def own_redis_servers() -> Iterator[Callable[[], RedisServer]]:
    """A maker of persistent redis-servers (acked means stored, across a restart), each
    cleaned up when the block ends."""
    started: list[RedisServer] = []

    def make() -> RedisServer:
        started.append(RedisServer(persistent=True).start())
        return started[-1]

    try:
        yield make
    finally:
        for server in started:
            server.cleanup()


def serve_flags(target: TestTarget) -> list[str]:
    """``chatctl serve`` flags for ``target``: ``--broker URL`` and each option's flag."""
    settings = {s.name: s for s in broker_options()}
    flags = ["--broker", target.url]
    for name, value in target.options.items():
        s = settings[name]
        flags += [s.option] if s.switch else [s.option, _text(value)]
    return flags


def _text(value: Any) -> str:
    return str(value)
