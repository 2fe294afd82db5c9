"""Where a room lives in Redis: its keys, its channel, and the Lua scripts that change them.

Every key of room ``R`` under prefix ``P`` carries the hash tag ``{R}``, so a Redis Cluster
keeps a whole room on one slot and each script touches one slot only (docs/redis.md)::

    P:{R}:meta          HASH    epoch, last (the id counter), and x:<id> for each deleted
                                message (its tombstone)                  expires (history TTL)
    P:{R}:log           STREAM  one entry per message, entry id 0-<message id>  expires
    P:{R}:dedup:U C     STRING  "id ts" of user U's message with client id C, for the window
    P:{R}:conns         ZSET    connection id -> expiry (ms, Redis clock)
    P:{R}:conn-user     HASH    connection id -> user
    P:{R}:users         HASH    user -> number of live connections
    P:{R}:sanctions     HASH    "mute:U" / "ban:U" -> the sanction's JSON (never expires
                                as a whole: expired entries are dropped when read)
    P:{R}               channel live messages and presence events (pub/sub)
    P:rooms             ZSET    room -> expiry (ms): rooms with members on some node, for
                                GET /rooms; each node refreshes its rooms with its heartbeat

With a history TTL, every publish refreshes the expiry of meta and log (and the heartbeat
does while the room has members), so an idle room's keys disappear by themselves: no scan.

Room names are validated (``[A-Za-z0-9][A-Za-z0-9._-]*``, or the server's own rooms of
protocol/direct.py, whose user names are percent-encoded), so they never contain a brace or
a colon; the prefix may not contain braces (it would steal the hash tag).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chatctl.protocol import Message, MessageKind, Presence, clean_display, valid_stored_room
from chatctl.protocol.moderation import Moderation

#: Lua helpers shared by the presence scripts. KEYS: conns, conn-user, users; ARGV[1]: channel.
_PRESENCE_PRELUDE = """
local conns, owners, counts, channel = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function event(user, what)
  local ts = string.format('%d.%03d', math.floor(now / 1000), now % 1000)
  redis.call('PUBLISH', channel, cjson.encode({p = what, u = user, ts = ts}))
end
local function add(conn, user, expires)
  if redis.call('ZADD', conns, expires, conn) == 1 then
    redis.call('HSET', owners, conn, user)
    if redis.call('HINCRBY', counts, user, 1) == 1 then event(user, 'join') end
  end
end
local function remove(conn)
  local user = redis.call('HGET', owners, conn)
  redis.call('ZREM', conns, conn)
  if not user then return end
  redis.call('HDEL', owners, conn)
  if redis.call('HINCRBY', counts, user, -1) <= 0 then
    redis.call('HDEL', counts, user)
    event(user, 'leave')
  end
end
local function reap()
  local expired = redis.call('ZRANGEBYSCORE', conns, '-inf', now, 'LIMIT', 0, 1000)
  for _, conn in ipairs(expired) do remove(conn) end
end
"""

#: Store, trim, remember the client id, refresh the room's expiry and publish, all or nothing.
#: KEYS: meta, log, dedup key. ARGV: epoch if new, user, text, kind, client id ('' = none),
#: maxlen, dedup window (ms), channel, history TTL (ms, 0 = never), display name ('' = none;
#: stored as field ``d`` only when given), moderation record JSON ('' = none; field ``m``).
#: Returns {0, message JSON, epoch} for a new message; for a repeated client id {1, "id ts",
#: epoch or false, the original entry if still kept}.
PUBLISH = """
local cid = ARGV[5]
if cid ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local epoch = redis.call('HGET', KEYS[1], 'epoch')
    local at = '0-' .. string.match(seen, '^%d+')
    local entry = redis.call('XRANGE', KEYS[2], at, at)
    if #entry > 0 then return {1, seen, epoch, entry[1]} end
    return {1, seen, epoch}
  end
end
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then redis.call('DEL', KEYS[2]) end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local id = string.format('%d', redis.call('HINCRBY', KEYS[1], 'last', 1))
local t = redis.call('TIME')
local ts = t[1] .. '.' .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local fields = {'u', ARGV[2], 't', ARGV[3], 'k', ARGV[4], 'c', cid, 'ts', ts}
local msg = {id = id, ts = ts, u = ARGV[2], t = ARGV[3], k = ARGV[4], c = cid}
if ARGV[10] and ARGV[10] ~= '' then
  table.insert(fields, 'd')
  table.insert(fields, ARGV[10])
  msg.d = ARGV[10]
end
if ARGV[11] and ARGV[11] ~= '' then
  table.insert(fields, 'm')
  table.insert(fields, ARGV[11])
  msg.m = ARGV[11]
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '0-' .. id, unpack(fields))
local payload = cjson.encode(msg)
if cid ~= '' then redis.call('SET', KEYS[3], id .. ' ' .. ts, 'PX', ARGV[7]) end
if ARGV[9] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  redis.call('PEXPIRE', KEYS[2], ARGV[9])
end
redis.call('PUBLISH', ARGV[8], payload)
return {0, payload, epoch}
"""

#: A consistent view of the room's kept history (the newest ``cap`` entries at most, none
#: older than the history TTL). KEYS: meta, log. ARGV: epoch if new, since (-1 = none), limit,
#: cap, history TTL (ms, 0 = never), before (-1 = none: ids below it only). Returns {epoch,
#: last id, 1 if complete else 0, entries}. The newest ``limit`` entries below ``before`` are
#: read with XREVRANGE from the exclusive bound ``(0-before`` down, so a page costs its size.
HISTORY = """
local ttl = tonumber(ARGV[5])
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local since, limit, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local first = last + 1
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #head > 0 then first = tonumber(string.match(head[1][1], '%-(%d+)$')) end
first = math.max(first, last - cap + 1)
if ttl > 0 and first <= last then
  -- messages older than the TTL have left the history: find the first one that has not
  local t = redis.call('TIME')
  local horizon = tonumber(t[1]) + tonumber(t[2]) / 1e6 - ttl / 1000
  local function young(id)
    local e = redis.call('XRANGE', KEYS[2], '0-' .. string.format('%d', id), '+', 'COUNT', 1)
    if #e == 0 then return true end
    local f = e[1][2]
    for i = 1, #f, 2 do
      if f[i] == 'ts' then return tonumber(f[i + 1]) >= horizon end
    end
    return true
  end
  if not young(first) then
    local lo, hi = first + 1, last + 1
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if young(mid) then hi = mid else lo = mid + 1 end
    end
    first = lo
  end
end
local before = tonumber(ARGV[6])
local top = last
if before >= 0 then top = math.min(last, before - 1) end
local start, complete
if since < 0 or since > last then
  start = math.max(first, top - limit + 1)
  complete = (since < 0) and 1 or 0
else
  start = math.max(first, since + 1)
  complete = (since + 1 >= first or since >= top) and 1 or 0
  if top - start + 1 > limit then
    start = top - limit + 1
    complete = 0
  end
end
local entries = {}
if start <= top and limit > 0 then
  local upper = '+'
  if top < last then upper = '(0-' .. string.format('%d', top + 1) end
  entries = redis.call('XREVRANGE', KEYS[2], upper, '0-' .. string.format('%d', start),
    'COUNT', limit)
  local n = #entries
  for i = 1, math.floor(n / 2) do
    entries[i], entries[n + 1 - i] = entries[n + 1 - i], entries[i]
  end
  if redis.call('HLEN', KEYS[1]) > 2 then  -- some messages were deleted: their tombstones
    for _, e in ipairs(entries) do
      if redis.call('HEXISTS', KEYS[1], 'x:' .. string.match(e[1], '%-(%d+)$')) == 1 then
        local f = e[2]
        for i = 1, #f, 2 do
          if f[i] == 't' then f[i + 1] = '' end
        end
        table.insert(f, 'x')
        table.insert(f, '1')
      end
    end
  end
end
return {epoch, last, complete, entries}
"""

#: One message of the room: {entry, 1 if deleted else 0}, or {} if the log does not keep it.
#: KEYS: meta, log. ARGV: id.
MESSAGE = """
local at = '0-' .. ARGV[1]
local entry = redis.call('XRANGE', KEYS[2], at, at)
if #entry == 0 then return {} end
return {entry[1], redis.call('HEXISTS', KEYS[1], 'x:' .. ARGV[1])}
"""

#: Make a kept message a tombstone (``x:<id>`` in meta), and forget the tombstones of ids the
#: log no longer keeps. KEYS: meta, log. ARGV: id. Returns 1, or 0 if not kept or already one.
DELETE = """
local at = '0-' .. ARGV[1]
if #redis.call('XRANGE', KEYS[2], at, at) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'x:' .. ARGV[1], '1') == 0 then return 0 end
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first = tonumber(string.match(head[1][1], '%-(%d+)$'))
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local id = string.match(field, '^x:(%d+)$')
  if id and tonumber(id) < first then redis.call('HDEL', KEYS[1], field) end
end
return 1
"""

#: Lift a sanction. KEYS: sanctions. ARGV: field. Returns the entry's JSON, or false.
LIFT = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then redis.call('HDEL', KEYS[1], ARGV[1]) end
return old
"""

#: ARGV: channel, ttl (ms), connection id, user.
JOIN = _PRESENCE_PRELUDE + "reap()\nadd(ARGV[3], ARGV[4], now + tonumber(ARGV[2]))\n"

#: ARGV: channel, connection id.
LEAVE = _PRESENCE_PRELUDE + "remove(ARGV[2])\n"

#: Heartbeat of one node in one room. KEYS: the presence keys, then meta and log.
#: ARGV: channel, ttl (ms), history TTL (ms, 0 = never), then connection id, user pairs.
#: Re-adds connections that vanished (expired or lost by Redis), reaps the expired ones, and
#: keeps the room's history from expiring while it has members.
REFRESH = (
    _PRESENCE_PRELUDE
    + """
local expires = now + tonumber(ARGV[2])
for i = 4, #ARGV, 2 do
  if redis.call('ZSCORE', conns, ARGV[i]) then
    redis.call('ZADD', conns, 'XX', expires, ARGV[i])
  else
    add(ARGV[i], ARGV[i + 1], expires)
  end
end
reap()
if ARGV[3] ~= '0' and redis.call('HLEN', counts) > 0 then
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
end
"""
)

#: The room directory (``P:rooms``). KEYS: the directory; ARGV: ttl (ms), then room names.
ROOMS_TOUCH = """
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'GT', expires, ARGV[i]) end
"""

#: KEYS: the directory. Forgets the rooms no node refreshed in time, returns the others.
ROOMS_LIST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""


def rooms_key(prefix: str) -> str:
    """The room directory's key (no hash tag: it lives on a slot of its own)."""
    return f"{prefix}:rooms"


#: ARGV: channel. Reaps expired connections, then returns the users.
USERS = _PRESENCE_PRELUDE + "reap()\nreturn redis.call('HKEYS', counts)\n"


@dataclass(frozen=True)
class RoomKeys:
    room: str
    meta: str
    log: str
    dedup: str
    conns: str
    conn_user: str
    users: str
    sanctions: str
    channel: str

    def dedup_key(self, user: str, client_id: str | None) -> str:
        # A user name has no whitespace, so the first space ends it: the key is unambiguous.
        return self.dedup if client_id is None else f"{self.dedup}{user} {client_id}"

    @property
    def presence(self) -> list[str]:
        return [self.conns, self.conn_user, self.users]


def check_prefix(prefix: str) -> str:
    if not prefix or "{" in prefix or "}" in prefix:
        raise ValueError(f"invalid Redis key prefix {prefix!r}: non-empty, without {{ or }}")
    return prefix


@lru_cache(maxsize=4096)
def room_keys(prefix: str, room: str) -> RoomKeys:
    """The keys of ``room``; raise ``ValueError`` for a name the server would refuse."""
    if not valid_stored_room(room):
        raise ValueError(f"invalid room name {room!r}")
    base = f"{prefix}:{{{room}}}"
    return RoomKeys(
        room=room,
        meta=f"{base}:meta",
        log=f"{base}:log",
        dedup=f"{base}:dedup:",
        conns=f"{base}:conns",
        conn_user=f"{base}:conn-user",
        users=f"{base}:users",
        sanctions=f"{base}:sanctions",
        channel=base,
    )


def room_of_channel(prefix: str, channel: str) -> str | None:
    head = prefix + ":{"
    if channel.startswith(head) and channel.endswith("}"):
        return channel[len(head) : -1]
    return None


# --------------------------------------------------------------------------- decoding


def message_from_json(room: str, payload: str) -> Message:
    """The message a PUBLISH script returned or published (see :data:`PUBLISH`)."""
    d: dict[str, Any] = json.loads(payload)
    return _message(room, int(d["id"]), d)


def message_from_entry(room: str, entry: Any) -> Message:
    """A stream entry as a message: ``[id, [field, value, ...]]`` as a script returns it, or
    ``(id, {field: value})`` as redis-py parses an XRANGE reply."""
    entry_id, flat = entry
    fields = flat if isinstance(flat, dict) else dict(zip(flat[::2], flat[1::2], strict=True))
    return _message(room, int(str(entry_id).rpartition("-")[2]), fields)


_KINDS: dict[object, MessageKind] = {"action": "action", "moderation": "moderation"}


def _message(room: str, id: int, d: dict[str, Any]) -> Message:
    client_id = d.get("c") or None
    moderation = d.get("m")
    return Message(
        id=id,
        room=room,
        user=str(d["u"]),
        text=str(d["t"]),
        ts=float(d["ts"]),
        kind=_KINDS.get(d.get("k"), "text"),
        client_id=None if client_id is None else str(client_id),
        display=clean_display(d.get("d")),
        moderation=None if not moderation else Moderation.from_dict(json.loads(moderation)),
        deleted=d.get("x") == "1",
    )


def event_from_payload(room: str, payload: str) -> Message | Presence:
    """What arrived on a room channel: a message or a presence change."""
    d: dict[str, Any] = json.loads(payload)
    what = d.get("p")
    if what is None:
        return _message(room, int(d["id"]), d)
    return Presence(room, str(d["u"]), "join" if what == "join" else "leave", float(d["ts"]))
