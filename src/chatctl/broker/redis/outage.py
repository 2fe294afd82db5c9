"""Redis outages as the Redis broker sees them, as a mixin: an outage is noted and logged
once when it starts and once when it ends, the pool's dead idle connections are dropped, and
each Redis error becomes the :class:`~chatctl.errors.BrokerError` a broker call raises."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from chatctl.broker.redis.errors import UNAVAILABLE, NotReplicated, redact, stale_connection
from chatctl.broker.redis.live import LiveFeed
from chatctl.errors import BrokerError, BrokerOutcomeUnknown, BrokerUnavailable

log = logging.getLogger("chatctl.broker.redis")


class RedisOutages:
    """The outage half of the Redis broker; the broker sets these attributes."""

    url: str
    _pool: Any
    _live: LiveFeed
    _beat_now: asyncio.Event
    _down_since: float | None
    _dropping: asyncio.Future[None] | None

    def _went_down(self, reason: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._drop_idle_connections()
            log.warning(
                "Redis unavailable at %s (%s): reconnecting; "
                "messages are refused while it cannot be reached",
                redact(self.url),
                reason,
            )

    def _came_back(self) -> None:
        if self._down_since is not None:
            log.info(
                "Redis available again at %s after %.1fs: %d rooms re-subscribed and caught up",
                redact(self.url),
                time.monotonic() - self._down_since,
                len(self._live.rooms()),
            )
            self._down_since = None
            self._beat_now.set()
            self._drop_idle_connections(again=True)

    def _drop_idle_connections(self, *, again: bool = False) -> None:
        """Close the pool's idle connections: after an outage they are dead (the server closed
        them), and redis-py would only find out by failing the next command on each.
        ``again``: even if an earlier drop is still under way (it may have passed over
        connections that died since)."""
        if again or self._dropping is None or self._dropping.done():
            self._dropping = asyncio.ensure_future(self._pool.disconnect(inuse_connections=False))
            self._dropping.add_done_callback(
                lambda f: f.cancelled() or f.exception()  # retrieved: nothing to report
            )

    def _failed(self, exc: Exception, *, unknown: bool = False) -> BrokerError:
        """The error to raise for ``exc``; notes the outage (logged once). ``unknown``: the
        command may have run (:class:`~chatctl.errors.BrokerOutcomeUnknown`)."""
        refuse = BrokerOutcomeUnknown if unknown else BrokerUnavailable
        if isinstance(exc, NotReplicated):  # Redis works; the client retries the same id
            log.debug("%s", exc)
            return refuse(f"not acked: {exc}")
        if isinstance(exc, UNAVAILABLE):
            if self._down_since is None and stale_connection(exc):
                # One dead idle connection is not an outage: after a Redis restart, a
                # connection left in the pool can fail its next command so (seen on uvloop);
                # the next command gets a new one.
                log.debug("dropping the pool's idle connections: %s", exc)
                self._drop_idle_connections(again=True)
                return refuse(f"Redis connection lost: {exc}")
            self._went_down(str(exc) or type(exc).__name__)
            self._drop_idle_connections()
            return refuse(f"Redis unavailable: {exc}")
        log.warning("Redis error: %s", exc)
        return refuse(f"Redis error: {exc}") if unknown else BrokerError(f"Redis error: {exc}")

    def _succeeded(self) -> None:
        if self._down_since is not None and self._live.healthy():
            self._came_back()
