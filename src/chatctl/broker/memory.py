"""The in-process broker: one server process, nothing else installed.

History lives in a bounded deque per room; it is lost when the process exits, so every
start draws a new ``epoch`` and a client resuming across a restart is told it was not
recovered.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

from chatctl.broker.base import Deliver, History, PublishResult
from chatctl.protocol import (
    DEFAULT_DEDUP_WINDOW,
    DEFAULT_HISTORY,
    Message,
    MessageKind,
    Presence,
)

log = logging.getLogger("chatctl.broker.memory")

#: Client ids remembered per room at most (the oldest are forgotten first). A retry re-sends
#: at most the few thousand messages a client has in flight, so this never matters for it.
MAX_DEDUP_ENTRIES = 200_000


@dataclass
class _Room:
    history_size: int
    last_id: int = 0
    log: deque[Message] = field(init=False)
    #: (user, client_id) -> (message id, message ts, first seen at), oldest first; only what
    #: an ack needs, so one client cannot pin (rate x window) message texts in memory
    seen: OrderedDict[tuple[str, str], tuple[int, float, float]] = field(
        default_factory=OrderedDict
    )
    subscriber: Deliver | None = None
    #: user -> ids of that user's connections in the room
    members: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.history_size)


def _hand_over(r: _Room, event: Message | Presence) -> None:
    """Call the room's subscriber, if any: its failure is logged, and the message stays
    published (stored, acknowledged) and the other rooms unaffected."""
    if r.subscriber is None:
        return
    try:
        r.subscriber(event)
    except Exception:
        log.exception("the subscriber of room %s failed on %r", event.room, event)


class MemoryBroker:
    """A :class:`~chatctl.broker.base.Broker` that keeps everything in this process."""

    def __init__(
        self,
        *,
        history_size: int = DEFAULT_HISTORY,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.history_size = history_size
        self.dedup_window = dedup_window
        self.epoch = secrets.token_hex(4)
        self._clock = clock
        self._rooms: dict[str, _Room] = {}

    def _room(self, room: str) -> _Room:
        r = self._rooms.get(room)
        if r is None:
            r = self._rooms[room] = _Room(self.history_size)
        return r

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for r in self._rooms.values():
            r.subscriber = None

    async def publish(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
    ) -> PublishResult:
        r = self._room(room)
        now = self._clock()
        if client_id is not None:
            self._expire(r, now)
            seen = r.seen.get((user, client_id))
            if seen is not None:
                msg_id, ts, _ = seen
                original = Message(msg_id, room, user, "", ts, kind, client_id)
                return PublishResult(original, duplicate=True)
        r.last_id += 1
        msg = Message(r.last_id, room, user, text, round(now, 3), kind, client_id)
        r.log.append(msg)
        if client_id is not None:
            r.seen[(user, client_id)] = (msg.id, msg.ts, now)
            if len(r.seen) > MAX_DEDUP_ENTRIES:  # bounded even under a flood within the window
                r.seen.popitem(last=False)
        _hand_over(r, msg)
        return PublishResult(msg)

    def _expire(self, r: _Room, now: float) -> None:
        horizon = now - self.dedup_window
        seen = r.seen
        while seen:
            key, (_, _, at) = next(iter(seen.items()))
            if at >= horizon:
                break
            del seen[key]

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        self._room(room).subscriber = deliver

    async def unsubscribe(self, room: str) -> None:
        r = self._rooms.get(room)
        if r is not None:
            r.subscriber = None

    async def history(self, room: str, *, since: int | None, limit: int) -> History:
        r = self._rooms.get(room)
        if r is None or not r.log:
            last = 0 if r is None else r.last_id
            complete = since is None or since == last
            return History([], last, self.epoch, complete)
        if since is None:
            start = max(0, len(r.log) - limit)
            return History(list(islice(r.log, start, None)), r.last_id, self.epoch)
        first_id = r.log[0].id
        if since > r.last_id:  # ids this room never gave out: another epoch
            start = max(0, len(r.log) - limit)
            return History(list(islice(r.log, start, None)), r.last_id, self.epoch, False)
        start = max(0, since + 1 - first_id)
        complete = since + 1 >= first_id
        if len(r.log) - start > limit:
            start = len(r.log) - limit
            complete = False
        return History(list(islice(r.log, start, None)), r.last_id, self.epoch, complete)

    async def join(self, room: str, user: str, conn_id: str) -> None:
        r = self._room(room)
        conns = r.members.setdefault(user, set())
        first = not conns
        conns.add(conn_id)
        if first:
            _hand_over(r, Presence(room, user, "join", round(self._clock(), 3)))

    async def leave(self, room: str, user: str, conn_id: str) -> None:
        r = self._rooms.get(room)
        if r is None:
            return
        conns = r.members.get(user)
        if conns is None or conn_id not in conns:
            return
        conns.discard(conn_id)
        if not conns:
            del r.members[user]
            _hand_over(r, Presence(room, user, "leave", round(self._clock(), 3)))

    async def users(self, room: str) -> list[str]:
        r = self._rooms.get(room)
        return [] if r is None else sorted(r.members)

    def healthy(self) -> bool:
        return True
