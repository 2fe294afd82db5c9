"""Prometheus metrics of one server, in their own ``CollectorRegistry``.

Every count lives in one :class:`Counters` owned here: the hub, the sessions and the handshake
add to it (``deliveries`` grows by the number of deliveries once per fan-out call, never once
per delivery); a collector turns it into Prometheus families when ``/metrics`` is scraped, so
the hot paths pay one integer add. A refused handshake is counted once, by reason and status,
so no refusal can be missing from ``/metrics``.
Only the latency histograms are observed as events happen, once per publish, once per
fan-out call, and the event loop's lag once per :data:`~chatctl.server.looplag.PERIOD`
(:mod:`chatctl.server.looplag`, started and stopped with the server).

A broker's own gauges come from the capabilities it declares (chatctl/broker/base.py):
:class:`~chatctl.broker.base.CountsReconnects` gives ``chatctl_broker_reconnects_total``,
:class:`~chatctl.broker.base.CountsRooms` gives ``chatctl_broker_rooms``, which shows retention
at work; a broker without them has no such metric.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chatctl.broker.base import CountsReconnects, CountsRooms
from chatctl.protocol import NOTICES_ROOM
from chatctl.server import looplag

if TYPE_CHECKING:
    from chatctl.server.app import ChatServer

#: Content-Type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

PUBLISH_BUCKETS = (
    *(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
FANOUT_BUCKETS = (
    *(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005),
    *(0.01, 0.025, 0.05, 0.1, 0.25),
)


@dataclass
class Counters:
    """What one server counted since it started."""

    messages_in: int = 0
    acks: int = 0
    #: events written to client connections
    deliveries: int = 0
    slow_disconnects: int = 0
    policy_closes: int = 0
    #: connections closed with 4001 at their token's expiry, and tokens renewed by refresh
    token_expiries: int = 0
    token_refreshes: int = 0
    token_revocations: int = 0
    #: error code -> error frames sent
    errors: Counter[str] = field(default_factory=Counter)
    #: (route, status) -> HTTP API requests answered
    http: Counter[tuple[str, int]] = field(default_factory=Counter)
    #: (reason, HTTP status) -> handshakes refused before the upgrade
    rejections: Counter[tuple[str, int]] = field(default_factory=Counter)

    def http_request(self, route: str, status: int) -> None:
        """One request of the HTTP API answered (``route`` is a fixed label, never a path)."""
        self.http[route, status] += 1

    def error(self, code: str) -> None:
        self.errors[code] += 1

    def reject(self, reason: str, status: int) -> None:
        self.rejections[reason, int(status)] += 1

    def rejected(self, status: int) -> int:
        """Handshakes refused with ``status``, whatever the reason."""
        return sum(n for (_, s), n in self.rejections.items() if s == status)


class Metrics:
    """The counters, histograms and registry of one :class:`~chatctl.server.app.ChatServer`."""

    def __init__(self, server: ChatServer) -> None:
        self.counters = Counters()
        self.registry = CollectorRegistry()
        self.publish_seconds = Histogram(
            "chatctl_broker_publish_seconds",
            "Time for the broker to store and publish one message (until the ack can be sent).",
            buckets=PUBLISH_BUCKETS,
            registry=self.registry,
        )
        self.fanout_seconds = Histogram(
            "chatctl_fanout_seconds",
            "Time to write one event to every local member of its room (one fan-out call).",
            buckets=FANOUT_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag_seconds = Histogram(
            "chatctl_event_loop_lag_seconds",
            "How late the event loop ran a timer due every 50 ms: the time every connection"
            " waited for something else (a long callback, a blocking call, the GIL).",
            buckets=looplag.BUCKETS,
            registry=self.registry,
        )
        #: samples the loop's lag into loop_lag_seconds (ChatServer.start starts it)
        self.loop_lag = looplag.LoopLag(self.loop_lag_seconds.observe)
        self.registry.register(_ServerCollector(server))

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)


class _ServerCollector(Collector):
    def __init__(self, server: ChatServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        srv, hub, counts = self.server, self.server.hub, self.server.metrics.counters
        yield GaugeMetricFamily(
            "chatctl_connections", "Open client connections on this node.", srv.limits.total
        )
        rooms = len(hub.rooms) - (NOTICES_ROOM in hub.rooms)  # not the dm notices' (+dms)
        yield GaugeMetricFamily("chatctl_rooms", "Rooms with members on this node.", rooms)
        yield GaugeMetricFamily(
            "chatctl_broker_up", "1 when the broker can publish and deliver.", srv.broker_healthy()
        )
        yield GaugeMetricFamily("chatctl_draining", "1 while the node drains.", srv.draining)
        yield CounterMetricFamily(
            "chatctl_messages_in", "Chat messages accepted from clients.", counts.messages_in
        )
        yield CounterMetricFamily(
            "chatctl_deliveries", "Events written to client connections.", counts.deliveries
        )
        yield CounterMetricFamily("chatctl_acks", "Acks sent to senders.", counts.acks)
        errors = CounterMetricFamily(
            "chatctl_errors", "Error frames sent to clients, by code.", labels=["code"]
        )
        for code, n in sorted(counts.errors.items()):
            errors.add_metric([str(code)], n)
        yield errors
        rejections = CounterMetricFamily(
            "chatctl_handshake_rejections",
            "Upgrade requests refused before the upgrade, by reason and HTTP status.",
            labels=["reason", "status"],
        )
        for (reason, status), n in sorted(counts.rejections.items()):
            rejections.add_metric([reason, str(status)], n)
        yield rejections
        http = CounterMetricFamily(
            "chatctl_http_requests",
            "Requests answered by the HTTP API, by route and HTTP status.",
            labels=["route", "status"],
        )
        for (route, status), n in sorted(counts.http.items()):
            http.add_metric([route, str(status)], n)
        yield http
        yield CounterMetricFamily(
            "chatctl_slow_consumer_disconnects",
            "Connections closed with 4008 because their pending output passed the bound.",
            counts.slow_disconnects,
        )
        yield CounterMetricFamily(
            "chatctl_policy_closes",
            "Connections closed with 1008 for sustained rate-limit abuse.",
            counts.policy_closes,
        )
        yield CounterMetricFamily(
            "chatctl_token_expiry_closes",
            "Connections closed with 4001 because their token expired without a refresh.",
            counts.token_expiries,
        )
        yield CounterMetricFamily(
            "chatctl_token_revocation_closes",
            "Connections closed with 4002 because their token was revoked.",
            counts.token_revocations,
        )
        actions = CounterMetricFamily(
            "chatctl_moderation_actions",
            "Moderations carried out through this node (kick, mute, ban, delete…), by action.",
            labels=["action"],
        )
        for action, n in sorted(hub.sanctions.actions.items()):
            actions.add_metric([action], n)
        yield actions
        yield CounterMetricFamily(
            "chatctl_token_refreshes",
            "Tokens renewed on open connections by a refresh frame.",
            counts.token_refreshes,
        )
        if isinstance(srv.broker, CountsRooms):
            yield GaugeMetricFamily(
                "chatctl_broker_rooms",
                "Rooms the broker holds in this process's memory (retention frees idle ones).",
                srv.broker.rooms,
            )
        if isinstance(srv.broker, CountsReconnects):
            yield CounterMetricFamily(
                "chatctl_broker_reconnects",
                "Times the broker re-established its connection to Redis.",
                srv.broker.reconnects,
            )
