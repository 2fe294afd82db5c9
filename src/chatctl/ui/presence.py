"""Joins and leaves shown without the noise of brief visits: a join is shown after
:data:`PRESENCE_DELAY` seconds, and a leave within that time hides both (each ``chatctl
send`` connects, posts and leaves: its message is what matters). A message from someone whose
join is held back shows the join first, so that it is never printed after what they said."""

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
        #: joins held back: user -> (timer, line)
        self._joins: dict[str, tuple[asyncio.TimerHandle, str]] = {}

    def joined(self, user: str, line: str) -> None:
        if user not in self._joins:
            timer = asyncio.get_running_loop().call_later(self.delay, self._show_join, user)
            self._joins[user] = (timer, line)

    def left(self, user: str, line: str) -> None:
        pending = self._joins.pop(user, None)
        if pending is not None:
            pending[0].cancel()
        else:
            self.show(line)

    def arrived(self, user: str) -> None:
        """``user`` spoke: a join still held back is shown now, before their message."""
        pending = self._joins.pop(user, None)
        if pending is not None:
            pending[0].cancel()
            self.show(pending[1])

    def _show_join(self, user: str) -> None:
        pending = self._joins.pop(user, None)
        if pending is not None:
            self.show(pending[1])
