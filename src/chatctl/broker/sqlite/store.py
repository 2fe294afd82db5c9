"""The SQLite broker's queries: read or create a room, store a batch of publishes, retention.

Plain functions of a connection inside the caller's transaction; the writer
(:mod:`chatctl.broker.sqlite.writer`) decides when they run.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections import deque
from dataclasses import dataclass

from chatctl.broker.base import SanctionEntry
from chatctl.broker.rooms import MAX_DEDUP_ENTRIES, DedupRecords, Kept, new_epoch
from chatctl.broker.sqlite.ops import Load, Publish, Sweep
from chatctl.protocol.moderation import Moderation

#: Rows one sweep deletes per table at most, so a sweep never holds up commits for long.
SWEEP_CHUNK = 5000
#: Rows one INSERT statement writes at most (x 10 columns stays under SQLite's oldest
#: default limit of 999 variables).
ROWS_PER_INSERT = 96
#: Rooms a sweep trims besides those published to since (one after the other, all in turn).
TRIM_ROUND = 64
#: Rooms one sweep looks at for expired messages (the next sweep, at once, goes on).
EXPIRE_ROUND = 1000


def chunks(ops: list[Publish]) -> list[list[Publish]]:
    """``ops`` in pieces of 128, 64, 32, … rows: a few statement shapes, each prepared once
    (sqlite3's statement cache), and one statement per piece rather than per row.

    A multi-row INSERT is one ``sqlite3_step``; ``executemany`` is one per row, and each
    step gives up and takes back the GIL: under a busy event loop each of those costs the
    writer a wait for the loop's switch interval (the convoy effect)."""
    out = []
    size, i = ROWS_PER_INSERT, 0
    while i < len(ops):
        while size > len(ops) - i:
            size //= 2
        out.append(ops[i : i + size])
        i += size
    return out


@functools.cache
def _insert(head: str, columns: int, rows: int, tail: str = "") -> str:
    row = "(" + ", ".join("?" * columns) + tail + ")"
    return f"{head} {', '.join([row] * rows)}"


def load(db: sqlite3.Connection, op: Load) -> tuple[int, str, int, float]:
    """The room's id, epoch, counter and touched (created if it does not exist); its history
    and dedup records are read by :func:`read_room`, on another connection.

    The counter is ``rooms.last_id`` or the newest message's id, whichever is higher: the
    row is not updated by publishes (:func:`publish`), only before a delete that may remove
    a room's newest message (:func:`fold_counter`); so is ``touched``."""
    row = db.execute(
        "SELECT rid, epoch, last_id, touched FROM rooms WHERE name = ?", (op.name,)
    ).fetchone()
    if row is None:
        epoch = new_epoch()
        (rid,) = db.execute(
            "INSERT INTO rooms (name, epoch, last_id, touched) VALUES (?, ?, 0, ?) RETURNING rid",
            (op.name, epoch, op.now),
        ).fetchone()
        return rid, epoch, 0, op.now
    rid, epoch, last, touched = row
    newest = _newest(db, rid)
    if newest is not None:
        last, touched = max(last, newest[0]), max(touched, newest[1])
    return rid, epoch, last, touched


def _newest(db: sqlite3.Connection, rid: int) -> tuple[int, float] | None:
    """Room ``rid``'s newest stored message: (id, ts), None without any."""
    row = db.execute(
        "SELECT id, ts FROM messages WHERE rid = ? ORDER BY id DESC LIMIT 1", (rid,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


def counter(db: sqlite3.Connection, rid: int) -> int:
    """Room ``rid``'s id counter as stored (see :func:`load`)."""
    row = db.execute("SELECT last_id FROM rooms WHERE rid = ?", (rid,)).fetchone()
    newest = _newest(db, rid)
    return max(0 if row is None else row[0], 0 if newest is None else newest[0])


def fold_counter(db: sqlite3.Connection, rid: int) -> None:
    """Write room ``rid``'s counter and touched into its row: before a delete that may take
    its newest message (retention), which the counter is otherwise derived from."""
    newest = _newest(db, rid)
    if newest is not None:
        db.execute(
            "UPDATE rooms SET last_id = max(last_id, ?), touched = max(touched, ?) WHERE rid = ?",
            (newest[0], newest[1], rid),
        )


def read_room(
    db: sqlite3.Connection, op: Load, rid: int, last: int
) -> tuple[deque[Kept], DedupRecords]:
    """Room ``rid``'s kept history (at most ``op.history_size`` messages) and its newest
    :data:`~chatctl.broker.rooms.MAX_DEDUP_ENTRIES` dedup records within the window, as the
    room holds them in memory: bounded whatever the database holds."""
    name = op.name
    cursor = db.execute(
        "SELECT id, user, text, ts, kind, client_id, display, moderation, deleted"
        " FROM messages WHERE rid = ? AND id > ? AND ts >= ? ORDER BY id",
        (rid, last - op.history_size, op.horizon),
    )
    log: deque[Kept] = deque(
        (
            (i, name, u, t, ts, k, c, d, _moderation(m), bool(x))
            for i, u, t, ts, k, c, d, m, x in cursor
        ),
        maxlen=op.history_size,
    )
    # The client ids within the window: the messages' own (seen at ≈ ts), and those of
    # messages deleted meanwhile (retention), which the dedup table keeps.
    cap = MAX_DEDUP_ENTRIES
    rows = db.execute(
        "SELECT ts, id, user, client_id, ts FROM messages WHERE rid = ? AND ts >= ?"
        " AND client_id IS NOT NULL ORDER BY id DESC LIMIT ?",
        (rid, op.dedup_horizon, cap),
    ).fetchall()
    rows += db.execute(
        "SELECT seen, id, user, client_id, ts FROM dedup WHERE rid = ? AND seen >= ?"
        " ORDER BY seen DESC LIMIT ?",
        (rid, op.dedup_horizon, cap),
    ).fetchall()
    rows.sort()  # oldest first
    seen = DedupRecords()
    for _, i, user, cid, ts in rows[-cap:]:
        seen.add(user, cid, i, ts)
    return log, seen


def publish(db: sqlite3.Connection, rid: int, ops: list[Publish], last: int) -> int:
    """Store ``ops``, all of room ``rid``, in order, ids after ``last`` (the room's counter);
    returns the new counter. One statement per :func:`chunks` piece: no UPDATE of the room,
    no dedup record (the message row is one, see :func:`read_room`) and no trim (the sweep
    trims, :func:`trim`)."""
    for op in ops:
        last += 1
        op.result = last
    for part in chunks(ops):
        if all(op.display is None and op.moderation is None for op in part):
            # a plain message, the common case: its last three columns are constants in the
            # statement (binding 7 values a row, not 10, is ~0.5 µs a row less: a third of
            # the INSERT's cost)
            values = [
                v
                for op in part
                for v in (rid, op.result, op.user, op.text, op.ts, op.kind, op.client_id)
            ]
            db.execute(_insert("INSERT INTO messages VALUES", 7, len(part), _PLAIN), values)
            continue
        values = [
            v
            for op in part
            for v in (
                rid, op.result, op.user, op.text, op.ts, op.kind, op.client_id, op.display,
                None if op.moderation is None else json.dumps(op.moderation.to_dict()), 0,
            )
        ]  # fmt: skip
        db.execute(_insert("INSERT INTO messages VALUES", 10, len(part)), values)
    return last


#: the constant columns of a plain message's row: no display name, no moderation, not deleted
_PLAIN = ", NULL, NULL, 0"


def trim(
    db: sqlite3.Connection, rid: int, last: int, keep: int, dedup_horizon: float
) -> tuple[bool, bool]:
    """Delete room ``rid``'s messages older than its kept history (the newest ``keep`` of
    ``last``) and than the de-duplication window (their rows are its records), at most
    :data:`SWEEP_CHUNK`. Returns (the room has more to trim later: rows kept for the window,
    the chunk was full). The newest message is always kept (``keep`` >= 1): the counter
    needs no folding."""
    top = last - keep  # the newest id the history no longer keeps
    (oldest,) = db.execute("SELECT min(id) FROM messages WHERE rid = ?", (rid,)).fetchone()
    if oldest is None or oldest > top:
        return False, False
    full = top - oldest + 1 > SWEEP_CHUNK
    top = min(top, oldest + SWEEP_CHUNK - 1)
    # ts grows with the id within a room: the first row inside the window ends the trim
    inside = db.execute(
        "SELECT id FROM messages WHERE rid = ? AND id <= ? AND ts >= ? ORDER BY id LIMIT 1",
        (rid, top, dedup_horizon),
    ).fetchone()
    end = top if inside is None else inside[0] - 1
    if end >= oldest:
        db.execute("DELETE FROM messages WHERE rid = ? AND id <= ?", (rid, end))
    return end < last - keep, full and end == top


@dataclass
class Cursor:
    """Where the sweeps go on: they walk the rooms by rid, a part each."""

    expire_after: int = 0
    trim_after: int = 0
    #: the clock when the walk of the rooms for expired messages last started over
    expired_at: float = float("-inf")


def sweep(db: sqlite3.Connection, op: Sweep, loaded: dict[int, int], cursor: Cursor) -> bool:
    """Retention, at most :data:`SWEEP_CHUNK` rows a table; rooms in ``loaded`` (held in
    memory) are never deleted. True when there is more to delete (or rooms to look at)."""
    more = False
    if op.horizon is not None:
        if cursor.expire_after or op.now >= cursor.expired_at + op.every:
            if not cursor.expire_after:
                cursor.expired_at = op.now
            more, cursor.expire_after = _expire(db, op, cursor.expire_after)
        stale: list[tuple[int]] = []
        candidates = db.execute(
            "SELECT rid FROM rooms WHERE touched < ? LIMIT ?", (op.horizon, SWEEP_CHUNK)
        ).fetchall()
        fresh = 0
        for (rid,) in candidates:
            newest = _newest(db, rid)
            if newest is not None and newest[1] >= op.horizon:  # posted to since: not stale
                fold_counter(db, rid)
                fresh += 1
            elif rid not in loaded:
                stale.append((rid,))
        if stale:
            db.executemany("DELETE FROM messages WHERE rid = ?", stale)
            db.executemany("DELETE FROM dedup WHERE rid = ?", stale)
            db.executemany("DELETE FROM rooms WHERE rid = ?", stale)
        # more only when this one got somewhere (rooms held in memory stay candidates)
        more = more or (len(candidates) == SWEEP_CHUNK and bool(stale or fresh))
    gone = db.execute(
        "DELETE FROM dedup WHERE (rid, user, client_id) IN"
        " (SELECT rid, user, client_id FROM dedup WHERE seen < ? LIMIT ?)",
        (op.dedup_horizon, SWEEP_CHUNK),
    ).rowcount
    more = more or gone == SWEEP_CHUNK
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    if free > 1024 and free * 4 > db.execute("PRAGMA page_count").fetchone()[0]:
        db.execute("PRAGMA incremental_vacuum(4096)").fetchall()  # give pages back
    return more


def _expire(db: sqlite3.Connection, op: Sweep, after: int) -> tuple[bool, int]:
    """Delete the messages older than ``op.horizon`` of :data:`EXPIRE_ROUND` rooms after rid
    ``after``, at most :data:`SWEEP_CHUNK`, walking each room by its primary key (no index on
    ts: a message writes one b-tree): within a room ts grows with the id, so its expired
    messages are the ones before its first fresh one. A walk over every room starts at most
    every ``op.every`` seconds (the memory broker's sweep interval: a tenth of the TTL, at
    most a minute), not at every sweep (every 10 s at most, for the rooms' cache). Returns
    (more: rooms left to look at or the chunk full, the rid to go on after).

    Before messages are deleted, the room's counter is folded into its row
    (:func:`fold_counter`): its newest message may be among them. The client ids of those
    still within the de-duplication window move to the dedup table."""
    assert op.horizon is not None
    rids = [rid for (rid,) in db.execute(
        "SELECT rid FROM rooms WHERE rid > ? ORDER BY rid LIMIT ?", (after, EXPIRE_ROUND)
    )]  # fmt: skip
    budget = SWEEP_CHUNK
    for rid in rids:
        row = db.execute(
            "SELECT id, ts FROM messages WHERE rid = ? ORDER BY id LIMIT 1", (rid,)
        ).fetchone()
        if row is None or row[1] >= op.horizon:
            after = rid
            continue
        oldest = row[0]
        fresh = db.execute(
            "SELECT id FROM messages WHERE rid = ? AND id < ? AND ts >= ? ORDER BY id LIMIT 1",
            (rid, oldest + budget, op.horizon),
        ).fetchone()
        end = oldest + budget - 1 if fresh is None else fresh[0] - 1  # the last id to delete
        fold_counter(db, rid)
        db.execute(
            "INSERT OR REPLACE INTO dedup SELECT rid, user, client_id, id, ts, ts FROM messages"
            " WHERE rid = ? AND id <= ? AND client_id IS NOT NULL AND ts >= ?",
            (rid, end, op.dedup_horizon),
        )
        budget -= db.execute("DELETE FROM messages WHERE rid = ? AND id <= ?", (rid, end)).rowcount
        if budget <= 0:
            return True, after  # this room again next time: it may have more
        after = rid
    if len(rids) < EXPIRE_ROUND:
        return False, 0  # every room seen: the next sweep starts over
    return True, after


def trim_rooms(
    db: sqlite3.Connection,
    op: Sweep,
    loaded: dict[int, int],
    dirty: set[int],
    after: int,
) -> tuple[bool, int]:
    """Trim the rooms published to (``dirty``, updated) and the next :data:`TRIM_ROUND`
    rooms after rid ``after`` (every room in turn, over the sweeps: those last written to
    before a restart too). Returns (more to trim at once, the rid to go on after)."""
    rids = [rid for (rid,) in db.execute(
        "SELECT rid FROM rooms WHERE rid > ? ORDER BY rid LIMIT ?", (after, TRIM_ROUND)
    )]  # fmt: skip
    after = rids[-1] if len(rids) == TRIM_ROUND else 0
    more = False
    for rid in sorted(dirty.union(rids)):
        last = loaded.get(rid)
        if last is None:
            last = counter(db, rid)
        later, full = trim(db, rid, last, op.history_size, op.dedup_horizon)
        more = more or full
        if later:
            dirty.add(rid)
        else:
            dirty.discard(rid)
    return more, after


def _moderation(text: str | None) -> Moderation | None:
    return None if text is None else Moderation.from_dict(json.loads(text))


# ---------------------------------------------------------------------------- moderation


def set_sanction(db: sqlite3.Connection, room: str, entry: SanctionEntry) -> None:
    db.execute(
        "INSERT OR REPLACE INTO sanctions VALUES (?, ?, ?, ?, ?)",
        (room, entry.kind, entry.user, json.dumps(entry.to_dict()), entry.until),
    )


def lift_sanction(db: sqlite3.Connection, room: str, user: str, kind: str) -> bool:
    """Delete the sanction; True if it was in force."""
    row = db.execute(
        "DELETE FROM sanctions WHERE room = ? AND kind = ? AND user = ? RETURNING until",
        (room, kind, user),
    ).fetchone()
    return row is not None and (row[0] is None or row[0] > time.time())


def sanctions(db: sqlite3.Connection, room: str) -> list[SanctionEntry]:
    """The room's sanctions in force (the expired ones are deleted meanwhile)."""
    now = time.time()
    db.execute("DELETE FROM sanctions WHERE room = ? AND until <= ?", (room, now))
    rows = db.execute("SELECT entry FROM sanctions WHERE room = ?", (room,)).fetchall()
    return [SanctionEntry.from_dict(json.loads(text)) for (text,) in rows]


def delete_message(db: sqlite3.Connection, room: str, id: int) -> bool:
    """Make message ``id`` of ``room`` a tombstone; False if not kept or already one."""
    row = db.execute(
        "UPDATE messages SET text = '', deleted = 1 WHERE rid = (SELECT rid FROM rooms"
        " WHERE name = ?) AND id = ? AND deleted = 0 RETURNING id",
        (room, id),
    ).fetchone()
    return row is not None
