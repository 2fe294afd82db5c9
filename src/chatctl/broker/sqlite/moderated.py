"""Moderation in the SQLite file (``broker.base.Moderates``), as a mixin of the broker: the
rooms' sanctions and deleted messages are written by the writer thread
(:mod:`chatctl.broker.sqlite.store`), a deleted message is also dropped from the room's
cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chatctl.broker.base import SanctionEntry
from chatctl.broker.sqlite import store
from chatctl.broker.sqlite.cache import CachedRoom
from chatctl.protocol import Message
from chatctl.protocol.moderation import Sanction

T = TypeVar("T")


class SQLiteModeration:
    """The moderation half of the SQLite broker."""

    if TYPE_CHECKING:

        async def run(self, fn: Callable[[Any], T]) -> T: ...

        async def _use(self, room: str) -> CachedRoom: ...

    async def set_sanction(self, room: str, entry: SanctionEntry) -> None:
        await self.run(lambda db: store.set_sanction(db, room, entry))

    async def lift_sanction(self, room: str, user: str, kind: Sanction) -> bool:
        return await self.run(lambda db: store.lift_sanction(db, room, user, kind))

    async def sanctions(self, room: str) -> list[SanctionEntry]:
        return await self.run(lambda db: store.sanctions(db, room))

    async def message(self, room: str, id: int) -> Message | None:
        kept = (await self._use(room)).kept(id)
        return None if kept is None or kept.deleted else kept

    async def delete_message(self, room: str, id: int) -> bool:
        r = await self._use(room)
        kept = r.kept(id)
        if kept is None or kept.deleted:
            return False
        await self.run(lambda db: store.delete_message(db, room, id))
        return r.delete(id)
