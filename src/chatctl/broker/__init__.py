"""Brokers: where messages are stored and how they reach every node.

``create_broker(url)`` picks one by URL scheme from the table in
:mod:`chatctl.broker.registry`: ``None`` or ``memory://`` gives the in-process broker;
``sqlite:///path`` the SQLite broker (``chatctl serve``'s default, in its data directory);
``redis://``, ``rediss://`` and ``unix://`` the Redis broker (imported only then);
``redis+cluster://`` and ``rediss+cluster://`` the Redis Cluster broker.
"""

from __future__ import annotations

from chatctl.broker.base import Broker, Deliver, Gap, History, PublishResult, Reset
from chatctl.broker.registry import BROKERS, create_broker, url_schemes

__all__ = [
    "BROKERS",
    "Broker",
    "Deliver",
    "Gap",
    "History",
    "PublishResult",
    "Reset",
    "create_broker",
    "url_schemes",
]
