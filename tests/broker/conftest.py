"""Fixtures of the broker tests: a Redis Cluster shared by the tests that only need one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.cluster_helpers import LocalCluster


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Three masters without replicas on free ports; tests keep apart by key prefix. Tests
    that reshard or kill nodes start their own."""
    cluster = LocalCluster(masters=3).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()
