"""Brokers: where messages are stored and how they reach every node.

``create_broker(url)`` picks one by URL: ``None`` or ``memory://`` gives the in-process broker;
``redis://``, ``rediss://`` and ``unix://`` the Redis broker (imported only then).
"""

from __future__ import annotations

from typing import Any

from chatctl.broker.base import Broker, Deliver, History, PublishResult, Reset
from chatctl.errors import UsageError

__all__ = ["Broker", "Deliver", "History", "PublishResult", "Reset", "create_broker"]


def create_broker(url: str | None, **options: Any) -> Broker:
    """Build the broker for ``url`` with ``options`` (history_size, dedup_window, prefix…)."""
    scheme = (url or "memory://").split(":", 1)[0].lower()
    if scheme == "memory":
        from chatctl.broker.memory import MemoryBroker

        options.pop("prefix", None)
        return MemoryBroker(**options)
    if scheme in ("redis", "rediss", "unix"):
        from chatctl.broker.redis import RedisBroker  # type: ignore[import-not-found,import-untyped,unused-ignore]

        assert url is not None
        broker: Broker = RedisBroker(url, **options)
        return broker
    if scheme == "sqlite":
        from chatctl.broker.sqlite import SQLiteBroker, parse_url

        assert url is not None
        options.pop("prefix", None)
        options.pop("presence_ttl", None)
        path, query = parse_url(url)
        return SQLiteBroker(path, synchronous=query.get("synchronous", "normal"), **options)
    raise UsageError(
        f"unsupported broker URL scheme {scheme!r}: use redis://, rediss:// or unix://"
    )
