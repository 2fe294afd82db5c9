"""Revoked tokens in Redis, shared by every node and written by ``chatctl token revoke`` on
any host that reaches the Redis: two keys with the hash tag ``{revoked}`` (one slot of a
cluster), under the broker's prefix ``P``::

    P:{revoked}:entries   HASH    "jti:ID" / "user:NAME" -> the entry's JSON   expires with
                                  the last of them; expired entries are dropped on a write
    P:{revoked}:version   STRING  random, set again by every write; nodes poll it (GET)

A node reads the whole hash only when the version changed.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from redis import exceptions as rx
from redis.commands.core import AsyncScript

from chatctl.errors import BrokerUnavailable
from chatctl.tokens.revocation import Revocation

#: KEYS: entries, version. ARGV: field, entry JSON, exp, before, new version.
REVOKE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local o = cjson.decode(old)
  if tonumber(o.before) >= tonumber(ARGV[4]) and tonumber(o.exp) >= tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local now = tonumber(redis.call('TIME')[1])
local all = redis.call('HGETALL', KEYS[1])
local latest = 0
for i = 1, #all, 2 do
  local exp = tonumber(cjson.decode(all[i + 1]).exp)
  if exp <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif exp > latest then
    latest = exp
  end
end
if latest > now then
  local at = math.ceil(latest)
  redis.call('EXPIREAT', KEYS[1], at)
  redis.call('SET', KEYS[2], ARGV[5], 'EXAT', at)
else
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], ARGV[5])
end
return 1
"""


def revocation_keys(prefix: str) -> tuple[str, str]:
    return f"{prefix}:{{revoked}}:entries", f"{prefix}:{{revoked}}:version"


class RedisRevocations:
    """The revocations half of the Redis broker (``broker.base.Revocations``)."""

    prefix: str
    _redis: Any
    _revoke_script: AsyncScript | None = None

    if TYPE_CHECKING:

        def _script(self, source: str) -> AsyncScript: ...

    async def revoke(self, entry: Revocation) -> None:
        """Store ``entry`` where every node reads it; BrokerUnavailable if Redis does not
        answer."""
        if self._revoke_script is None:
            self._revoke_script = self._script(REVOKE)
        args: list[str | float] = [
            entry.field,
            entry.to_json(),
            entry.exp,
            entry.before,
            secrets.token_hex(8),
        ]
        try:
            await self._revoke_script(keys=list(revocation_keys(self.prefix)), args=args)
        except rx.RedisError as exc:
            raise BrokerUnavailable(f"Redis: {exc}") from None

    async def revocations(self, seen: str) -> tuple[str, list[Revocation] | None]:
        """The version, and every entry when it changed since ``seen`` (one GET otherwise)."""
        entries_key, version_key = revocation_keys(self.prefix)
        try:
            version = await self._redis.get(version_key) or ""
            if version == seen:
                return version, None
            found = await self._redis.hgetall(entries_key)
        except rx.RedisError as exc:
            raise BrokerUnavailable(f"Redis: {exc}") from None
        entries = [Revocation.from_json(text) for text in found.values()]
        return version, [e for e in entries if e is not None]
