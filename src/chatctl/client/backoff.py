"""Capped exponential backoff with jitter, between a stream's connection attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: ``initial * 2**n`` up to ``cap``, each delay
    drawn uniformly from its upper half (so many clients do not reconnect in lockstep)."""

    initial: float = 0.2
    cap: float = 10.0
    attempts: int = 0

    def next(self) -> float:
        base = min(self.cap, self.initial * 2**self.attempts)
        self.attempts += 1
        return random.uniform(base / 2, base)

    def reset(self) -> None:
        self.attempts = 0
