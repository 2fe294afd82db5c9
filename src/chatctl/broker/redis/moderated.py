"""Moderation in Redis (``broker.base.Moderates``), in the room's own slot (hash tag
``{R}``) like the rest of the room::

    P:{R}:sanctions   HASH    "mute:U" / "ban:U" -> the sanction's JSON; an expired entry
                              is dropped when the room's sanctions are read
    P:{R}:meta        HASH    x:<id> for each deleted message of the kept log: history
                              serves it as a tombstone (the stream's entries are never
                              rewritten); forgotten once the log no longer keeps the id

A moderation announcement is stored by the PUBLISH script with its record (field ``m``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from redis import exceptions as rx
from redis.commands.core import AsyncScript

from chatctl.broker.base import SanctionEntry
from chatctl.broker.redis.keys import DELETE, LIFT, MESSAGE, message_from_entry, room_keys
from chatctl.errors import BrokerError
from chatctl.protocol import Message
from chatctl.protocol.moderation import Sanction


class RedisModeration:
    """The moderation half of the Redis broker."""

    prefix: str
    _redis: Any
    _moderation_scripts: dict[str, AsyncScript] | None = None

    if TYPE_CHECKING:

        def _script(self, source: str) -> AsyncScript: ...

        def _failed(self, exc: Exception, *, unknown: bool = False) -> BrokerError: ...

    def _run(self, name: str) -> AsyncScript:
        scripts = self._moderation_scripts
        if scripts is None:
            scripts = self._moderation_scripts = {
                "message": self._script(MESSAGE),
                "delete": self._script(DELETE),
                "lift": self._script(LIFT),
            }
        return scripts[name]

    async def set_sanction(self, room: str, entry: SanctionEntry) -> None:
        key = room_keys(self.prefix, room).sanctions
        try:
            await self._redis.hset(key, f"{entry.kind}:{entry.user}", json.dumps(entry.to_dict()))
        except rx.RedisError as exc:
            raise self._failed(exc) from None

    async def lift_sanction(self, room: str, user: str, kind: Sanction) -> bool:
        key = room_keys(self.prefix, room).sanctions
        try:
            old = await self._run("lift")(keys=[key], args=[f"{kind}:{user}"])
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        return bool(old) and SanctionEntry.from_dict(json.loads(old)).active(time.time())

    async def sanctions(self, room: str) -> list[SanctionEntry]:
        key = room_keys(self.prefix, room).sanctions
        try:
            found: dict[str, str] = await self._redis.hgetall(key)
            now = time.time()
            entries = {field: SanctionEntry.from_dict(json.loads(v)) for field, v in found.items()}
            expired = [field for field, e in entries.items() if not e.active(now)]
            if expired:
                await self._redis.hdel(key, *expired)
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        return [e for e in entries.values() if e.active(now)]

    async def message(self, room: str, id: int) -> Message | None:
        keys = room_keys(self.prefix, room)
        try:
            found = await self._run("message")(keys=[keys.meta, keys.log], args=[id])
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        if not found or int(found[1]):
            return None
        return message_from_entry(room, found[0])

    async def delete_message(self, room: str, id: int) -> bool:
        keys = room_keys(self.prefix, room)
        try:
            done = await self._run("delete")(keys=[keys.meta, keys.log], args=[id])
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        return bool(done)
