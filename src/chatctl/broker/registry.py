"""Every broker, by URL scheme: the one table ``create_broker``, ``chatctl serve --broker``,
its flags, the docs and the broker test suites read.

Adding a broker is one module (a class satisfying :class:`~chatctl.broker.base.Broker`) and
one :class:`BrokerEntry` in :data:`BROKERS`: its URL schemes, its description, its own
options (each a :class:`~chatctl.setting.Setting`, which becomes a ``chatctl serve`` flag, a
line of its man page and of docs/configuration.md) and how its tests start it
(:attr:`BrokerEntry.test`: the conformance and send-order suites run every entry). The
module is imported only when its scheme is used, so ``chatctl send`` never imports redis (as
encode/broadcaster's ``_base.py`` does it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chatctl.broker.base import Broker
from chatctl.errors import UsageError
from chatctl.setting import Setting


class Service(Protocol):
    """A service behind a broker that a test can stop and start again (a redis-server)."""

    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...

    def start(self) -> object: ...


class TestServices(Protocol):
    """What a broker's test hook may ask the test suite for (tests/ provides it)."""

    @property
    def tmp_path(self) -> Path:
        """A fresh directory of this test."""
        ...

    def redis_server(self) -> Service:
        """A started private redis-server (persistent: acked means stored across a restart),
        stopped by the suite after the test; the suite may share one between tests."""
        ...

    def redis_cluster(self) -> str:
        """The URL of a running Redis Cluster (``redis+cluster://…``), shared by tests."""
        ...

    def namespace(self) -> str:
        """A name no other test uses, for key prefixes in a shared store."""
        ...


@dataclass(frozen=True)
class TestTarget:
    """Where a broker's test finds it: its URL, the values of its options (by setting name:
    ``chatctl serve`` gets them as flags), and the service a test may restart, if any."""

    url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    service: Service | None = None


@dataclass(frozen=True)
class BrokerEntry:
    """One broker: where its class lives, what it is, the options it takes, how to test it."""

    name: str
    #: URL schemes that select it, lower case, without ``://``
    schemes: tuple[str, ...]
    #: ``module:Class``, imported on first use
    target: str
    #: one line for docs and --help
    description: str
    #: how the broker's tests start it (see :class:`TestServices`)
    test: Callable[[TestServices], TestTarget]
    #: its own options: flags of ``chatctl serve`` and keywords of its constructor
    options: tuple[Setting, ...] = ()
    #: the common options its constructor takes (history_size, dedup_window, history_ttl)
    common: frozenset[str] = frozenset({"history_size", "dedup_window", "history_ttl"})
    #: whether the constructor takes the URL as its first argument
    takes_url: bool = True
    #: whether several processes can share it (what ``chatctl serve --workers`` needs)
    shared: bool = False
    #: whether rooms outlive the process (the memory broker's do not)
    persistent: bool = True
    #: whether its test target has a service a test may stop and start (``TestTarget.service``)
    restartable: bool = False

    @property
    def keywords(self) -> frozenset[str]:
        """Every keyword its constructor takes from :func:`create_broker`'s options."""
        return self.common | {s.key for s in self.options}

    def load(self) -> Callable[..., Broker]:
        """The broker class (imports its module)."""
        module, _, name = self.target.partition(":")
        cls: Callable[..., Broker] = getattr(importlib.import_module(module), name)
        return cls


def _fsync(on: bool) -> str | None:
    return "full" if on else None


_SQLITE_OPTIONS = (
    Setting(
        "fsync",
        "Sync each commit to disk: acked messages survive a power loss too (slower).",
        type=bool,
        default=False,
        section="Storage",
        switch=True,
        target=("synchronous",),
        convert=_fsync,
    ),
)
_REDIS_OPTIONS = (
    Setting(
        "redis_prefix",
        "Prefix of every Redis key.",
        default="chatctl",
        section="Storage",
        target=("prefix",),
    ),
    Setting(
        "redis_wait_replicas",
        "Ack a message only once this many Redis replicas have it (WAIT), so that a failover "
        "cannot lose it; 0: ack once the master has it.",
        type=int,
        default=0,
        section="Storage",
        min=0,
        target=("wait_replicas",),
    ),
    Setting(
        "presence_ttl",
        "Seconds before the users of a vanished node leave (Redis broker).",
        type=float,
        default=20.0,
        section="Storage",
        min=1,
        hidden=True,
        target=("presence_ttl",),
    ),
)


def _redis_test(services: TestServices) -> TestTarget:
    redis = services.redis_server()
    return TestTarget(redis.url, {"redis_prefix": services.namespace()}, service=redis)


def _cluster_test(services: TestServices) -> TestTarget:
    return TestTarget(services.redis_cluster(), {"redis_prefix": services.namespace()})


#: every broker chatctl has; the first is the default of create_broker(None) (``chatctl
#: serve`` itself defaults to SQLite in its data directory: chatctl.server.assemble.broker_url)
BROKERS: list[BrokerEntry] = [
    BrokerEntry(
        "memory",
        ("memory",),
        "chatctl.broker.memory:MemoryBroker",
        "in this process only: history and ids are lost on exit",
        test=lambda services: TestTarget("memory:"),
        takes_url=False,
        persistent=False,
    ),
    BrokerEntry(
        "sqlite",
        ("sqlite",),
        "chatctl.broker.sqlite.broker:SQLiteBroker",
        "a SQLite file (sqlite:///DIR/ keeps DIR/chatctl.db): one server, rooms survive restarts",
        test=lambda services: TestTarget(f"sqlite://{services.tmp_path}/"),
        options=_SQLITE_OPTIONS,
    ),
    BrokerEntry(
        "redis",
        ("redis", "rediss", "unix"),
        "chatctl.broker.redis.broker:RedisBroker",
        "one Redis (>= 7) shared by any number of nodes",
        test=_redis_test,
        options=_REDIS_OPTIONS,
        shared=True,
        restartable=True,
    ),
    BrokerEntry(
        "rediscluster",
        ("redis+cluster", "rediss+cluster"),
        "chatctl.broker.redis.cluster:RedisClusterBroker",
        "a Redis Cluster (redis+cluster://HOST:PORT,HOST:PORT...) shared by any number of nodes",
        test=_cluster_test,
        options=_REDIS_OPTIONS,
        shared=True,
    ),
]


def url_schemes() -> list[str]:
    """``memory://``, ``redis://``…: every scheme a broker URL may have, in table order."""
    return [f"{scheme}://" for entry in BROKERS for scheme in entry.schemes]


def broker_options() -> tuple[Setting, ...]:
    """Every broker's own options, once each (brokers may share one), in table order."""
    seen: dict[str, Setting] = {}
    for entry in BROKERS:
        for option in entry.options:
            seen.setdefault(option.name, option)
    return tuple(seen.values())


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


def option_keywords(values: Mapping[str, Any]) -> dict[str, Any]:
    """Broker option values by setting name (``redis_prefix``) as constructor keywords
    (``prefix``), converted as each setting says."""
    options = {o.name: o for o in broker_options()}
    return {options[name].key: options[name].value_for(v) for name, v in values.items()}


def create_broker(url: str | None, **options: Any) -> Broker:
    """Build the broker ``url`` selects with the ``options`` it takes (history_size,
    dedup_window, prefix…); options only other brokers take are left out, unknown ones
    raise :class:`TypeError`."""
    entry = entry_for(url)
    known = frozenset().union(*(e.keywords for e in BROKERS))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown broker options: {', '.join(unknown)}")
    taken = {k: v for k, v in options.items() if k in entry.keywords}
    cls = entry.load()
    return cls(url, **taken) if entry.takes_url else cls(**taken)


@contextmanager
def registered(entry: BrokerEntry) -> Iterator[BrokerEntry]:
    """``entry`` in :data:`BROKERS` for the duration (a plugin, or a test's broker)."""
    if any(e.name == entry.name for e in BROKERS):
        raise ValueError(f"a broker named {entry.name!r} is already registered")
    BROKERS.append(entry)
    try:
        yield entry
    finally:
        BROKERS.remove(entry)
