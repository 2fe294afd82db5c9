"""The in-process broker: one server process, nothing else installed.

History lives in a bounded deque per room; it is lost when the process exits, so every
room draws a new ``epoch`` when it is created and a client resuming across a restart is told
it was not recovered.

Retention: with ``history_ttl`` > 0, a sweep every ``history_ttl / 10`` seconds (at most a
minute) drops messages older than the TTL and forgets rooms nobody is connected to whose
newest message (or creation) is older than the TTL; a forgotten room that comes back is a
new room with a new epoch. The sweep is a timer, never work done on the publish path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from chatctl.broker.base import (
    DEFAULT_HISTORY_TTL,
    Deliver,
    History,
    PublishResult,
    SanctionEntry,
)
from chatctl.broker.rooms import RELEASE_AFTER, RoomState, release_memory
from chatctl.protocol import (
    DEFAULT_DEDUP_WINDOW,
    DEFAULT_HISTORY,
    Message,
    MessageKind,
)
from chatctl.protocol.moderation import Moderation, Sanction


def sweep_interval(ttl: float) -> float:
    """How often retention runs for ``ttl``: a tenth of it, between 0.1 s and a minute."""
    return min(max(ttl / 10, 0.1), 60.0)


class MemoryBroker:
    """A :class:`~chatctl.broker.base.Broker` that keeps everything in this process."""

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        history_ttl: float = DEFAULT_HISTORY_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        if history_ttl < 0:
            raise ValueError("history_ttl must be 0 (never) or positive")
        self.history_size = history_size
        self.dedup_window = dedup_window
        self.history_ttl = history_ttl
        self._clock = clock
        self._rooms: dict[str, RoomState] = {}
        #: room -> (kind, user) -> sanction: apart from the rooms, which retention forgets
        self._sanctions: dict[str, dict[tuple[str, str], SanctionEntry]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        #: rooms forgotten since memory was last handed back to the system
        self._forgotten = 0

    def _room(self, room: str) -> RoomState:
        r = self._rooms.get(room)
        if r is None:
            r = self._rooms[room] = RoomState(room, self.history_size, touched=self._clock())
        return r

    async def last_id(self, room: str) -> int:
        r = self._rooms.get(room)
        return 0 if r is None else r.last_id

    @property
    def rooms(self) -> int:
        """Rooms held in memory (for tests and /metrics)."""
        return len(self._rooms)

    async def start(self) -> None:
        if self.history_ttl > 0:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="chatctl-retention")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for r in self._rooms.values():
            r.subscriber = None

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(sweep_interval(self.history_ttl))
            self.sweep()

    def sweep(self) -> None:
        """Apply retention now: old messages leave, idle rooms are forgotten."""
        now = self._clock()
        horizon = now - self.history_ttl if self.history_ttl else float("-inf")
        dedup_horizon = now - self.dedup_window
        forgotten = []
        for name, r in self._rooms.items():
            r.forget_messages_before(horizon)
            r.forget_seen_before(dedup_horizon)
            if r.idle and r.touched < horizon:
                forgotten.append(name)
        for name in forgotten:
            del self._rooms[name]
        self._forgotten += len(forgotten)
        if self._forgotten >= RELEASE_AFTER:
            self._forgotten = 0
            release_memory()

    async def publish(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
        display: str | None = None,
        moderation: Moderation | None = None,
    ) -> PublishResult:
        r = self._room(room)
        now = self._clock()
        if client_id is not None:
            horizon = now - self.dedup_window
            r.seen.forget_before(horizon)
            original = r.original(user, client_id, text, kind, display, horizon=horizon)
            if original is not None:
                return PublishResult(original, duplicate=True, epoch=r.epoch)
        msg = Message(
            r.last_id + 1, room, user, text, round(now, 3), kind, client_id, display, moderation
        )
        r.remember(msg)
        r.hand_over(msg)
        return PublishResult(msg, epoch=r.epoch)

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        self._room(room).subscriber = deliver

    async def unsubscribe(self, room: str) -> None:
        r = self._rooms.get(room)
        if r is not None:
            r.subscriber = None

    async def history(
        self, room: str, *, since: int | None, limit: int, before: int | None = None
    ) -> History:
        return self._room(room).history(since, limit, before)

    async def join(self, room: str, user: str, conn_id: str) -> None:
        self._room(room).join(user, conn_id, self._clock())

    async def leave(self, room: str, user: str, conn_id: str) -> None:
        r = self._rooms.get(room)
        if r is not None:
            r.leave(user, conn_id, self._clock())

    async def users(self, room: str) -> list[str]:
        r = self._rooms.get(room)
        return [] if r is None else sorted(r.members)

    def healthy(self) -> bool:
        return True

    # ------------------------------------------------------------------ moderation

    async def set_sanction(self, room: str, entry: SanctionEntry) -> None:
        self._sanctions.setdefault(room, {})[(entry.kind, entry.user)] = entry

    async def lift_sanction(self, room: str, user: str, kind: Sanction) -> bool:
        entries = self._sanctions.get(room, {})
        entry = entries.pop((kind, user), None)
        if not entries:
            self._sanctions.pop(room, None)
        return entry is not None and entry.active(self._clock())

    async def sanctions(self, room: str) -> list[SanctionEntry]:
        entries = self._sanctions.get(room)
        if not entries:
            return []
        now = self._clock()
        for key in [k for k, e in entries.items() if not e.active(now)]:
            del entries[key]
        return list(entries.values())

    async def message(self, room: str, id: int) -> Message | None:
        r = self._rooms.get(room)
        kept = None if r is None else r.kept(id)
        return None if kept is None or kept.deleted else kept

    async def delete_message(self, room: str, id: int) -> bool:
        r = self._rooms.get(room)
        return r is not None and r.delete(id)
