"""Reading a room from the SQLite file into memory on its first use, as a mixin of the
broker: one load per room however many callers wait for it, the room's log read off the
loop by the reader, and the publishes made meanwhile queued in order (or all failed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatctl.broker.base import PublishDone
from chatctl.broker.sqlite.cache import CachedRoom
from chatctl.broker.sqlite.dispatch import call
from chatctl.broker.sqlite.ops import Evict, Load, Op
from chatctl.broker.sqlite.reader import Reader
from chatctl.errors import BrokerError, BrokerUnavailable
from chatctl.protocol import MessageKind
from chatctl.protocol.moderation import Moderation

#: a publish made before its room was read: (user, text, kind, client_id, display,
#: moderation, done)
Queued = tuple[str, str, MessageKind, str | None, str | None, Moderation | None, PublishDone]


class RoomLoader:
    """The room-loading half of the SQLite broker; the broker sets these attributes."""

    history_size: int
    history_ttl: float
    dedup_window: float
    _clock: Callable[[], float]
    _rooms: dict[str, CachedRoom]
    _loading: dict[str, asyncio.Future[CachedRoom]]
    _unloaded: dict[str, list[Queued]]
    _reader: Reader | None
    _loads: set[asyncio.Task[None]]

    if TYPE_CHECKING:

        def _future(self) -> asyncio.Future[Any]: ...

        def _submit(self, op: Op) -> None: ...

        def _enqueue(
            self,
            r: CachedRoom,
            user: str,
            text: str,
            kind: MessageKind,
            client_id: str | None,
            display: str | None,
            moderation: Moderation | None,
            done: PublishDone,
        ) -> None: ...

    async def _use(self, room: str) -> CachedRoom:
        """The room, read from the database (or created there) on first use."""
        r = self._rooms.get(room)
        if r is None:
            loading = self._loading.get(room)
            if loading is None:
                loading = self._load(room)
            r = await asyncio.shield(loading)
        r.used = time.monotonic()
        return r

    def _load(self, room: str) -> asyncio.Future[CachedRoom]:
        now = self._clock()
        ttl = self.history_ttl
        op = Load(
            self._future(),
            name=room,
            history_size=self.history_size,
            horizon=now - ttl if ttl else float("-inf"),
            dedup_horizon=now - self.dedup_window,
            now=now,
        )
        self._submit(op)
        loading: asyncio.Future[CachedRoom] = self._future()
        self._loading[room] = loading
        task = asyncio.ensure_future(self._install(op, loading))
        self._loads.add(task)
        task.add_done_callback(self._loads.discard)
        return loading

    async def _install(self, op: Load, loading: asyncio.Future[CachedRoom]) -> None:
        """Once ``op`` has read the room: hold it in memory, then queue the publishes made
        meanwhile, in order (or fail them all)."""
        name = op.name
        rid = None
        try:
            assert op.future is not None and self._reader is not None
            rid, epoch, last, touched = await op.future
            log, seen = await self._reader.read(op, rid, last)  # off the loop, and the writer
        except Exception as exc:
            if rid is not None:  # retention may delete it again
                with contextlib.suppress(BrokerUnavailable):
                    self._submit(Evict(self._future(), rid=rid))
            if not isinstance(exc, BrokerError):
                exc = BrokerUnavailable(f"cannot read room {name} from the database: {exc}")
            del self._loading[name]
            for *_, done in self._unloaded.pop(name, ()):
                call(done, None, exc)
            loading.set_exception(exc)
            loading.exception()  # retrieved: the awaiting callers may be gone
            return
        r = CachedRoom(name, self.history_size, epoch=epoch, last_id=last, touched=touched)
        r.rid, r.used, r.log, r.seen = rid, time.monotonic(), log, seen
        self._rooms[name] = r
        del self._loading[name]
        for queued in self._unloaded.pop(name, ()):
            self._enqueue(r, *queued)
        loading.set_result(r)
