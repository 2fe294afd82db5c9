"""Joins and leaves shown without the noise of brief visits: a join is shown after
:data:`PRESENCE_DELAY` seconds, and a leave within that time hides both (each ``chatctl
send`` connects, posts and leaves: its message is what matters)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: Seconds a join waits before it is shown; a leave in that time hides both.
PRESENCE_DELAY = 2.0


class QuietPresence:
    def __init__(self, show: Callable[[str], None], delay: float = PRESENCE_DELAY) -> None:
        """``show(line)`` writes a join or leave line."""
        self.show = show
        self.delay = delay
        self._joins: dict[str, asyncio.TimerHandle] = {}

    def joined(self, user: str, line: str) -> None:
        if user not in self._joins:
            self._joins[user] = asyncio.get_running_loop().call_later(
                self.delay, self._show_join, user, line
            )

    def left(self, user: str, line: str) -> None:
        pending = self._joins.pop(user, None)
        if pending is not None:
            pending.cancel()
        else:
            self.show(line)

    def _show_join(self, user: str, line: str) -> None:
        if self._joins.pop(user, None) is not None:
            self.show(line)
