"""Every broker, by URL scheme: the one table ``create_broker``, ``chatctl serve`` and the
conformance suite read.

Adding a broker is one module (a class satisfying :class:`~chatctl.broker.base.Broker`) and
one :class:`BrokerEntry` line in :data:`BROKERS`. The module is imported only when its
scheme is used, so ``chatctl send`` never imports redis (as encode/broadcaster's ``_base.py``
does it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatctl.broker.base import Broker
from chatctl.errors import UsageError


@dataclass(frozen=True)
class BrokerEntry:
    """One broker: where its class lives and which of the common options it takes."""

    name: str
    #: URL schemes that select it, lower case, without ``://``
    schemes: tuple[str, ...]
    #: ``module:Class``, imported on first use
    target: str
    #: the options its constructor takes (the others a caller passes are for other brokers)
    options: frozenset[str]
    #: whether the constructor takes the URL as its first argument
    takes_url: bool = True
    #: whether several processes can share it (what ``chatctl serve --workers`` needs)
    shared: bool = False

    def load(self) -> Callable[..., Broker]:
        """The broker class (imports its module)."""
        module, _, name = self.target.partition(":")
        cls: Callable[..., Broker] = getattr(importlib.import_module(module), name)
        return cls


_COMMON = frozenset({"history_size", "dedup_window", "history_ttl"})

#: every broker chatctl has; the first is the default of create_broker(None) (``chatctl
#: serve`` itself defaults to SQLite in its data directory: chatctl.serve.broker_url)
BROKERS: tuple[BrokerEntry, ...] = (
    BrokerEntry(
        "memory", ("memory",), "chatctl.broker.memory:MemoryBroker", _COMMON, takes_url=False
    ),
    BrokerEntry("sqlite", ("sqlite",), "chatctl.broker.sqlite.broker:SQLiteBroker", _COMMON),
    BrokerEntry(
        "redis",
        ("redis", "rediss", "unix"),
        "chatctl.broker.redis:RedisBroker",
        _COMMON | {"prefix", "presence_ttl", "wait_replicas"},
        shared=True,
    ),
    BrokerEntry(
        "rediscluster",
        ("redis+cluster", "rediss+cluster"),
        "chatctl.broker.redis_cluster:RedisClusterBroker",
        _COMMON | {"prefix", "presence_ttl", "wait_replicas"},
        shared=True,
    ),
)


def url_schemes() -> list[str]:
    """``memory://``, ``redis://``…: every scheme a broker URL may have, in table order."""
    return [f"{scheme}://" for entry in BROKERS for scheme in entry.schemes]


def entry_for(url: str | None) -> BrokerEntry:
    """The broker ``url`` selects (``None``: the default); a :class:`UsageError` naming the
    supported schemes when none does."""
    if url is None:
        return BROKERS[0]
    scheme = url.split(":", 1)[0].lower()
    for entry in BROKERS:
        if scheme in entry.schemes:
            return entry
    raise UsageError(
        f"unsupported broker URL scheme {scheme!r}: use one of {', '.join(url_schemes())}"
    )


def create_broker(url: str | None, **options: Any) -> Broker:
    """Build the broker ``url`` selects with the ``options`` it takes (history_size,
    dedup_window, prefix…); options only other brokers take are left out, unknown ones
    raise :class:`TypeError`."""
    entry = entry_for(url)
    known = frozenset().union(*(e.options for e in BROKERS))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown broker options: {', '.join(unknown)}")
    taken = {k: v for k, v in options.items() if k in entry.options}
    cls = entry.load()
    return cls(url, **taken) if entry.takes_url else cls(**taken)
