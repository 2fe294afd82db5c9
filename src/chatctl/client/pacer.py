"""Pacing: a sender kept under the frame-rate limit the server announced."""

from __future__ import annotations

import asyncio
import time

from chatctl.protocol import RateLimit, Welcome


class Pacer:
    """Keeps a sender under the frame-rate limit the server announced (the welcome's
    ``limits``, then ``limits`` frames when the user's connection count changes its share),
    with a small margin, so a bulk send is slowed down rather than refused."""

    MARGIN = 0.95

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate * self.MARGIN
        self.burst = max(1.0, burst * self.MARGIN)
        self._tokens = self.burst
        self._stamp = time.monotonic()

    @classmethod
    def from_welcome(cls, welcome: Welcome) -> Pacer | None:
        limits = welcome.limits
        if not isinstance(limits, dict):
            return None
        rate, burst = limits.get("rate"), limits.get("burst")
        if not isinstance(rate, int | float) or not isinstance(burst, int | float) or rate <= 0:
            return None
        return cls(float(rate), float(burst))

    def update(self, limit: RateLimit) -> None:
        """Pace under ``limit`` from now on (tokens saved up beyond its burst are dropped)."""
        if limit.rate > 0:
            self.rate = limit.rate * self.MARGIN
            self.burst = max(1.0, limit.burst * self.MARGIN)
            self._tokens = min(self._tokens, self.burst)

    async def wait(self) -> None:
        """Take one token, sleeping first if there is none."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1.0:
            await asyncio.sleep((1.0 - self._tokens) / self.rate)
            self._tokens, self._stamp = 1.0, time.monotonic()
        self._tokens -= 1.0
