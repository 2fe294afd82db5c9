"""A room's state as the in-process brokers keep it: kept history, de-duplication, presence.

Shared by :mod:`chatctl.broker.memory` (where it is all there is) and
:mod:`chatctl.broker.sqlite` (where it is a cache of what the database holds, plus presence,
which is never stored). Nothing here does I/O or knows about the event loop.
"""

from __future__ import annotations

import ctypes
import logging
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from itertools import islice

from chatctl.broker.base import Deliver, History
from chatctl.protocol import Message, Presence

log = logging.getLogger("chatctl.broker")

#: Client ids remembered per room at most (the oldest are forgotten first). A retry re-sends
#: at most the few thousand messages a client has in flight, so this never matters for it.
MAX_DEDUP_ENTRIES = 200_000


#: Rooms forgotten in one sweep from which on freed memory is handed back to the system.
RELEASE_AFTER = 1000


def release_memory() -> None:
    """Hand the heap's free memory back to the system after many rooms were forgotten:
    glibc's ``malloc_trim`` (CPython's allocator frees its own arenas by itself, but what
    it got from malloc stays in the process otherwise). A no-op without glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def new_epoch() -> str:
    return secrets.token_hex(4)


@dataclass(eq=False)
class RoomState:
    name: str
    history_size: int
    epoch: str = field(default_factory=new_epoch)
    #: newest id given out (and, for the SQLite broker, committed)
    last_id: int = 0
    #: clock time of the room's creation or newest message (retention)
    touched: float = 0.0
    log: deque[Message] = field(init=False)
    #: (user, client_id) -> (message id, message ts, first seen at), oldest first; only what
    #: an ack needs, so one client cannot pin (rate x window) message texts in memory
    seen: OrderedDict[tuple[str, str], tuple[int, float, float]] = field(
        default_factory=OrderedDict
    )
    subscriber: Deliver | None = None
    #: user -> ids of that user's connections in the room (a list: most users have one, and
    #: a one-item list is a third of an empty set's size, for the life of the connection)
    members: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log = deque(maxlen=self.history_size)

    def hand_over(self, event: Message | Presence) -> None:
        """Call the room's subscriber, if any: its failure is logged, and the message stays
        published (stored, acknowledged) and the other rooms unaffected."""
        if self.subscriber is None:
            return
        try:
            self.subscriber(event)
        except Exception:
            log.exception("the subscriber of room %s failed on %r", self.name, event)

    @property
    def idle(self) -> bool:
        """Nobody is connected to the room on this node."""
        return self.subscriber is None and not self.members

    # ------------------------------------------------------------------ messages

    def remember(self, msg: Message, seen_at: float) -> None:
        """Keep ``msg`` (the newest message) in the history and its client id for dedup."""
        self.last_id = msg.id
        self.touched = max(self.touched, msg.ts)
        self.log.append(msg)
        if msg.client_id is not None:
            self.seen[(msg.user, msg.client_id)] = (msg.id, msg.ts, seen_at)
            if len(self.seen) > MAX_DEDUP_ENTRIES:  # bounded even under a flood in the window
                self.seen.popitem(last=False)

    def original(
        self, user: str, client_id: str, text: str, kind: str, display: str | None = None
    ) -> Message | None:
        """The message ``(user, client_id)`` published within the window, if any."""
        seen = self.seen.get((user, client_id))
        if seen is None:
            return None
        msg_id, ts, _ = seen
        if self.log and self.log[0].id <= msg_id:
            kept = self.log[msg_id - self.log[0].id]
            if kept.id == msg_id:
                return kept
        # Trimmed from the history: the id and time are the original's, the rest is the repeat's.
        return Message(msg_id, self.name, user, text, ts, kind, client_id, display)  # type: ignore[arg-type]

    def kept(self, msg_id: int) -> Message | None:
        """Message ``msg_id`` if the history keeps it (a tombstone included)."""
        log = self.log
        if not log or not log[0].id <= msg_id <= log[-1].id:
            return None
        kept = log[msg_id - log[0].id]
        return kept if kept.id == msg_id else None

    def delete(self, msg_id: int) -> bool:
        """Replace kept message ``msg_id`` by its tombstone; False if not kept or already
        deleted."""
        kept = self.kept(msg_id)
        if kept is None or kept.deleted:
            return False
        self.log[msg_id - self.log[0].id] = kept.tombstone()
        return True

    def forget_seen_before(self, horizon: float) -> None:
        seen = self.seen
        while seen:
            key, (_, _, at) = next(iter(seen.items()))
            if at >= horizon:
                break
            del seen[key]

    def forget_messages_before(self, horizon: float) -> None:
        """Drop kept messages older than ``horizon`` (retention)."""
        log = self.log
        while log and log[0].ts < horizon:
            log.popleft()

    def history(self, since: int | None, limit: int, before: int | None = None) -> History:
        """Up to ``limit`` newest kept messages after ``since`` and below ``before`` (see the
        Broker contract). The kept ids are consecutive, so a bound is an index."""
        log, last = self.log, self.last_id
        top = last if before is None else min(last, before - 1)  # the newest id wanted
        if not log:
            complete = since is None or top <= since <= last
            return History([], last, self.epoch, complete)
        first_id = log[0].id
        end = max(0, min(len(log), top - first_id + 1))
        if since is None or since > last:  # since > last: ids this room never gave: another epoch
            start = max(0, end - limit)
            return History(list(islice(log, start, end)), last, self.epoch, since is None)
        start = min(end, max(0, since + 1 - first_id))
        complete = since + 1 >= first_id or since >= top
        if end - start > limit:
            start = end - limit
            complete = False
        return History(list(islice(log, start, end)), last, self.epoch, complete)

    # ------------------------------------------------------------------ presence

    def join(self, user: str, conn_id: str, ts: float) -> None:
        conns = self.members.setdefault(user, [])
        first = not conns
        if conn_id not in conns:
            conns.append(conn_id)
        if first:
            self.hand_over(Presence(self.name, user, "join", round(ts, 3)))

    def leave(self, user: str, conn_id: str, ts: float) -> None:
        conns = self.members.get(user)
        if conns is None or conn_id not in conns:
            return
        conns.remove(conn_id)
        if not conns:
            del self.members[user]
            self.hand_over(Presence(self.name, user, "leave", round(ts, 3)))
