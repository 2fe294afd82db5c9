"""A room's state as the in-process brokers keep it: kept history, de-duplication, presence.

Shared by :mod:`chatctl.broker.memory` (where it is all there is) and
:mod:`chatctl.broker.sqlite` (where it is a cache of what the database holds, plus presence,
which is never stored). Nothing here does I/O or knows about the event loop.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import math
import secrets
from collections import deque
from dataclasses import dataclass, field
from itertools import islice

from chatctl.broker.base import Deliver, History
from chatctl.protocol import Message, MessageKind, Presence
from chatctl.protocol.moderation import Moderation

log = logging.getLogger("chatctl.broker")

#: Client ids remembered per room at most (the oldest are forgotten first). A retry re-sends
#: at most the few thousand messages a client has in flight, so this never matters for it.
MAX_DEDUP_ENTRIES = 200_000


#: Rooms forgotten in one sweep from which on freed memory is handed back to the system.
RELEASE_AFTER = 1000

#: A kept message as a room's history holds it: a plain tuple of its fields, in
#: :class:`~chatctl.protocol.Message`'s order (``Message(*kept)`` is the message again).
#: The garbage collector stops tracking a tuple of strings and numbers after the first pass
#: that sees it, so kept messages cost the full collections nothing. As Message objects,
#: always tracked, they were most of what those collections walked: 44,404 of 126,082
#: objects, a 72 ms pause, at 50 rooms x 20 with full histories; and every message kept is a
#: long-lived object more, which is what starts a full collection, so under load one came
#: every few seconds (docs/performance.md, "Garbage collection and the tail").
Kept = tuple[
    int, str, str, str, float, MessageKind, str | None, str | None, Moderation | None, bool
]


#: Seconds a dedup record may outlive the window: expired records are looked for at most
#: once this often (each look walks the dict's front, see :class:`DedupRecords`).
DEDUP_EXPIRY_STEP = 1.0


class DedupRecords:
    """A room's de-duplication records: ``(user, client_id)`` of each message first seen
    within the window -> the original's id and time, oldest first.

    Held where the garbage collector never looks: one plain ``dict`` of ``str`` keys
    (``user + NUL + client_id``: a user name holds no control character) and ``complex``
    values (the id as the real part, exact below 2**53, the time as the imaginary part);
    neither is a type the collector tracks, so neither is the dict. The OrderedDict of
    tuples this replaces was walked entry by entry at every full collection: at 50 rooms x
    100 msg/s its records (600 s window) made each full collection ~20 ms longer per 100,000
    records, a stall of every connection growing for ten minutes of steady load
    (docs/performance.md, "Garbage collection and the tail").

    Records are forgotten in insertion order (the order they were seen), at most
    :data:`DEDUP_EXPIRY_STEP` seconds after the window (one that old no longer answers:
    :meth:`get` takes the window's start); beyond
    :data:`MAX_DEDUP_ENTRIES` the oldest sixteenth is forgotten at once.
    """

    __slots__ = ("_due", "_records")

    def __init__(self) -> None:
        self._records: dict[str, complex] = {}
        #: the horizon from which on the oldest record may have expired
        self._due = -math.inf

    def __len__(self) -> int:
        return len(self._records)

    def add(self, user: str, client_id: str, msg_id: int, ts: float) -> None:
        records = self._records
        if not records:
            self._due = ts + DEDUP_EXPIRY_STEP
        records[user + "\x00" + client_id] = complex(msg_id, ts)
        if len(records) > MAX_DEDUP_ENTRIES:  # bounded even under a flood in the window
            self._drop_oldest(len(records) - MAX_DEDUP_ENTRIES + MAX_DEDUP_ENTRIES // 16)

    def get(self, user: str, client_id: str, horizon: float) -> tuple[int, float] | None:
        """The original's id and time, if ``(user, client_id)`` was seen at ``horizon`` or
        later (a record not yet forgotten but older than that does not count)."""
        v = self._records.get(user + "\x00" + client_id)
        return None if v is None or v.imag < horizon else (int(v.real), v.imag)

    def forget_before(self, horizon: float) -> None:
        """Forget the records of messages seen before ``horizon``; cheap until one can be
        :data:`DEDUP_EXPIRY_STEP` old."""
        if horizon < self._due:
            return
        records = self._records
        old = []
        for key, v in records.items():
            if v.imag >= horizon:
                self._due = v.imag + DEDUP_EXPIRY_STEP
                break
            old.append(key)
        else:
            self._due = -math.inf
        for key in old:
            del records[key]

    def _drop_oldest(self, n: int) -> None:
        records = self._records
        for key in list(itertools.islice(records, n)):
            del records[key]
        if records:
            self._due = next(iter(records.values())).imag + DEDUP_EXPIRY_STEP


def kept_of(msg: Message) -> Kept:
    """``msg`` as a history keeps it."""
    return (
        msg.id, msg.room, msg.user, msg.text, msg.ts, msg.kind, msg.client_id, msg.display,
        msg.moderation, msg.deleted,
    )  # fmt: skip


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
    #: the kept history, oldest first, ids consecutive (see :data:`Kept`)
    log: deque[Kept] = field(init=False)
    #: (user, client_id) -> (message id, message ts), oldest first; only what an ack
    #: needs, so one client cannot pin (rate x window) message texts in memory
    seen: DedupRecords = field(default_factory=DedupRecords)
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

    def remember(self, msg: Message) -> None:
        """Keep ``msg`` (the newest message) in the history and its client id for dedup."""
        self.last_id = msg.id
        self.touched = max(self.touched, msg.ts)
        self.log.append(kept_of(msg))
        if msg.client_id is not None:
            self.seen.add(msg.user, msg.client_id, msg.id, msg.ts)

    def original(
        self,
        user: str,
        client_id: str,
        text: str,
        kind: str,
        display: str | None = None,
        *,
        horizon: float,
    ) -> Message | None:
        """The message ``(user, client_id)`` published since ``horizon`` (the window's
        start), if any."""
        seen = self.seen.get(user, client_id, horizon)
        if seen is None:
            return None
        msg_id, ts = seen
        kept = self.kept(msg_id)
        if kept is not None:
            return kept
        # Trimmed from the history: the id and time are the original's, the rest is the repeat's.
        return Message(msg_id, self.name, user, text, ts, kind, client_id, display)  # type: ignore[arg-type]

    def kept(self, msg_id: int) -> Message | None:
        """Message ``msg_id`` if the history keeps it (a tombstone included)."""
        log = self.log
        if not log or not log[0][0] <= msg_id <= log[-1][0]:
            return None
        kept = log[msg_id - log[0][0]]
        return Message(*kept) if kept[0] == msg_id else None

    def delete(self, msg_id: int) -> bool:
        """Replace kept message ``msg_id`` by its tombstone; False if not kept or already
        deleted."""
        kept = self.kept(msg_id)
        if kept is None or kept.deleted:
            return False
        self.log[msg_id - self.log[0][0]] = kept_of(kept.tombstone())
        return True

    def forget_seen_before(self, horizon: float) -> None:
        self.seen.forget_before(horizon)

    def forget_messages_before(self, horizon: float) -> None:
        """Drop kept messages older than ``horizon`` (retention)."""
        log = self.log
        while log and log[0][4] < horizon:  # the kept message's ts
            log.popleft()

    def history(self, since: int | None, limit: int, before: int | None = None) -> History:
        """Up to ``limit`` newest kept messages after ``since`` and below ``before`` (see the
        Broker contract). The kept ids are consecutive, so a bound is an index."""
        log, last = self.log, self.last_id
        top = last if before is None else min(last, before - 1)  # the newest id wanted
        if not log:
            complete = since is None or top <= since <= last
            return History([], last, self.epoch, complete)
        first_id = log[0][0]
        end = max(0, min(len(log), top - first_id + 1))
        if since is None or since > last:  # since > last: ids this room never gave: another epoch
            start = max(0, end - limit)
            kept = [Message(*k) for k in islice(log, start, end)]
            return History(kept, last, self.epoch, since is None)
        start = min(end, max(0, since + 1 - first_id))
        complete = since + 1 >= first_id or since >= top
        if end - start > limit:
            start = end - limit
            complete = False
        kept = [Message(*k) for k in islice(log, start, end)]
        return History(kept, last, self.epoch, complete)

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
