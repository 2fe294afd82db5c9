"""Fixtures of the broker tests: a redis-server per module and a Redis Cluster shared by the
tests that only need one (tests keep apart by key prefix)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.cluster_helpers import LocalCluster
from support.helpers import RedisServer


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    """A private redis-server for one test module, started on first use (the registry's test
    hooks ask for it: BrokerServices)."""
    pytest.importorskip("chatctl.broker.redis", reason="the Redis broker is not built")
    redis = RedisServer().start()
    try:
        yield redis
    finally:
        redis.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Three masters without replicas on free ports; tests keep apart by key prefix. Tests
    that reshard or kill nodes start their own."""
    cluster = LocalCluster(masters=3).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()
