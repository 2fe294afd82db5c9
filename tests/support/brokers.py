"""What the broker tests share: a subscriber that collects deliveries, and a poll for states."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chatctl.broker import Gap, Reset
from chatctl.protocol import Message, Presence


class Sink:
    """Collects what a broker delivers and lets a test wait for it."""

    def __init__(self) -> None:
        self.events: list[Message | Presence | Reset | Gap] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Message | Presence | Reset | Gap) -> None:
        self.events.append(event)
        self._changed.set()

    @property
    def messages(self) -> list[Message]:
        return [e for e in self.events if isinstance(e, Message)]

    @property
    def presence(self) -> list[Presence]:
        return [e for e in self.events if isinstance(e, Presence)]

    async def wait_for(self, pred: Callable[[Sink], bool], timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while not pred(self):
                self._changed.clear()
                await self._changed.wait()


async def eventually(predicate: Callable[[], bool], timeout: float = 10) -> None:
    """Poll a state that has no event to wait on (``healthy()``), up to ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - health is a state, not an event
            await asyncio.sleep(0.02)
