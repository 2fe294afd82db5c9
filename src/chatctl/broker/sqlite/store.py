"""The SQLite broker's queries: read or create a room, store a batch of publishes, retention.

Plain functions of a connection inside the caller's transaction; the writer
(:mod:`chatctl.broker.sqlite.writer`) decides when they run.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections import OrderedDict, deque

from chatctl.broker.base import SanctionEntry
from chatctl.broker.rooms import MAX_DEDUP_ENTRIES, new_epoch
from chatctl.broker.sqlite.ops import Load, Publish, Sweep
from chatctl.protocol import Message
from chatctl.protocol.moderation import Moderation

#: Rows one sweep deletes per table at most, so a sweep never holds up commits for long.
SWEEP_CHUNK = 5000
#: Rows one INSERT statement writes at most (x 10 columns stays under SQLite's oldest
#: default limit of 999 variables).
ROWS_PER_INSERT = 96


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
def _insert(head: str, columns: int, rows: int) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return f"{head} {', '.join([row] * rows)}"


def load(db: sqlite3.Connection, op: Load) -> tuple[int, str, int, float]:
    """The room's id, epoch, counter and touched (created if it does not exist); its history
    and dedup records are read by :func:`read_room`, on another connection."""
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
    return rid, epoch, last, touched


def read_room(
    db: sqlite3.Connection, op: Load, rid: int, last: int
) -> tuple[deque[Message], OrderedDict[tuple[str, str], tuple[int, float, float]]]:
    """Room ``rid``'s kept history (at most ``op.history_size`` messages) and its newest
    :data:`~chatctl.broker.rooms.MAX_DEDUP_ENTRIES` dedup records within the window, as the
    room holds them in memory: bounded whatever the database holds."""
    name = op.name
    cursor = db.execute(
        "SELECT id, user, text, ts, kind, client_id, display, moderation, deleted"
        " FROM messages WHERE rid = ? AND id > ? AND ts >= ? ORDER BY id",
        (rid, last - op.history_size, op.horizon),
    )
    log = deque(
        (
            Message(i, name, u, t, ts, k, c, d, _moderation(m), bool(x))
            for i, u, t, ts, k, c, d, m, x in cursor
        ),
        maxlen=op.history_size,
    )
    rows = db.execute(
        "SELECT user, client_id, id, ts, seen FROM dedup WHERE rid = ? AND seen >= ?"
        " ORDER BY seen DESC LIMIT ?",
        (rid, op.dedup_horizon, MAX_DEDUP_ENTRIES),
    ).fetchall()
    rows.reverse()  # oldest first
    seen = OrderedDict(((user, cid), (i, ts, at)) for user, cid, i, ts, at in rows)
    return log, seen


def publish(db: sqlite3.Connection, rid: int, ops: list[Publish]) -> None:
    """Store ``ops``, all of room ``rid``, in order: ids given out, history trimmed."""
    row = db.execute(
        "UPDATE rooms SET last_id = last_id + ?, touched = ? WHERE rid = ? RETURNING last_id",
        (len(ops), ops[-1].ts, rid),
    ).fetchone()
    if row is None:
        raise RuntimeError(f"room {rid} vanished from the database while in use")
    last = row[0]
    first = last - len(ops) + 1
    for i, op in enumerate(ops):
        op.result = first + i
    for part in chunks(ops):
        values = [
            v
            for op in part
            for v in (
                rid, op.result, op.user, op.text, op.ts, op.kind, op.client_id, op.display,
                None if op.moderation is None else json.dumps(op.moderation.to_dict()), 0,
            )
        ]  # fmt: skip
        db.execute(_insert("INSERT INTO messages VALUES", 10, len(part)), values)
        seen = [op for op in part if op.client_id is not None]
        if seen:
            values = [
                v for op in seen for v in (rid, op.user, op.client_id, op.result, op.ts, op.seen_at)
            ]
            db.execute(_insert("INSERT OR REPLACE INTO dedup VALUES", 6, len(seen)), values)
    keep = ops[-1].history_size
    if last > keep:
        db.execute("DELETE FROM messages WHERE rid = ? AND id <= ?", (rid, last - keep))


def sweep(db: sqlite3.Connection, op: Sweep, loaded: set[int]) -> bool:
    """Retention, at most :data:`SWEEP_CHUNK` rows a table; rooms in ``loaded`` (held in
    memory) are never deleted. True when there is more to delete."""
    more = False
    if op.horizon is not None:
        gone = db.execute(
            "DELETE FROM messages WHERE (rid, id) IN"
            " (SELECT rid, id FROM messages WHERE ts < ? LIMIT ?)",
            (op.horizon, SWEEP_CHUNK),
        ).rowcount
        more = gone == SWEEP_CHUNK
        stale = [
            (rid,)
            for (rid,) in db.execute(
                "SELECT rid FROM rooms WHERE touched < ? LIMIT ?", (op.horizon, SWEEP_CHUNK)
            )
            if rid not in loaded
        ]
        if stale:
            db.executemany("DELETE FROM messages WHERE rid = ?", stale)
            db.executemany("DELETE FROM dedup WHERE rid = ?", stale)
            db.executemany("DELETE FROM rooms WHERE rid = ?", stale)
            more = more or len(stale) == SWEEP_CHUNK
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
