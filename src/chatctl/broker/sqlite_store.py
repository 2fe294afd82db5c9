"""The SQLite broker's database: its schema and migrations, the lock, and the writer thread.

One thread owns the one connection and runs every database operation, in the order they were
submitted. Whatever is queued when it starts a transaction goes into that transaction (group
commit): a burst of publishes costs one COMMIT, and nothing is reported done before COMMIT
returned. Results go back to the event loop with one ``call_soon_threadsafe`` per transaction.

A small batch of publishes found with the thread idle is run on the loop's own thread
instead (:meth:`Writer.run_here`, decided by the broker): at a chat's usual rate each message
is its own transaction, and the two thread hops and the GIL hand-overs inside a transaction
(every ``sqlite3_step`` gives the GIL up) cost more than the ~70 µs transaction itself, and
under a busy loop each hand-over can wait for the interpreter's switch interval (5 ms). Never
with ``synchronous=full``, whose COMMIT waits for the disk.

Order after a failed write: a transaction that fails on a fault of the database (full disk,
I/O error) starts a refusal *episode*. The writer refuses, without touching the database,
every op it takes from the queue until the loop's :class:`Resume` marker of that episode
comes. The loop queues the marker when it handles the failure, after failing every op it had
submitted and not yet seen finished; so everything queued before the marker was already
failed on the loop, and nothing submitted before a refusal was delivered ever commits. Both
channels are FIFO (the queue; ``call_soon_threadsafe`` from this one thread), which is what
makes this exact rather than likely.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`; :data:`MIGRATIONS` brings an older
file forward in one transaction at start; ``PRAGMA application_id`` marks the file as ours)::

    rooms     rid, name, epoch, last_id (the id counter), touched (newest message or creation)
    messages  (rid, id) -> user, text, ts, kind, client_id      kept history, trimmed
    dedup     (rid, user, client_id) -> id, ts, seen            client ids within the window
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from chatctl.broker.base import PublishDone
from chatctl.errors import ConfigError
from chatctl.protocol import Message

log = logging.getLogger("chatctl.broker.sqlite")

SCHEMA_VERSION = 1
#: "chat": tells a chatctl database from any other SQLite file
APPLICATION_ID = 0x63686174
#: Rows one sweep deletes per table at most, so a sweep never holds up commits for long.
SWEEP_CHUNK = 5000
#: Seconds between write probes while writes fail (full disk, I/O error).
PROBE_INTERVAL = 1.0
#: The writer checkpoints the WAL into the database (PASSIVE: it never waits) after this many
#: commits or rows, whichever comes first: about SQLite's own auto-checkpoint at 1,000 pages
#: (a one-message commit writes 4-5 pages), which is off because it runs inside the COMMIT
#: that crosses it and so, for a commit on the loop's thread, would stall every connection
#: for the milliseconds it takes (the 50-room bench's p99 went from 4 to 7-8 ms with it).
CHECKPOINT_COMMITS = 256
CHECKPOINT_ROWS = 20_000


def _schema_v1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE rooms (rid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " epoch TEXT NOT NULL, last_id INTEGER NOT NULL, touched REAL NOT NULL)"
    )
    db.execute("CREATE INDEX rooms_touched ON rooms (touched)")
    db.execute(
        "CREATE TABLE messages (rid INTEGER NOT NULL, id INTEGER NOT NULL, user TEXT NOT NULL,"
        " text TEXT NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL, client_id TEXT,"
        " PRIMARY KEY (rid, id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX messages_ts ON messages (ts)")
    db.execute(
        "CREATE TABLE dedup (rid INTEGER NOT NULL, user TEXT NOT NULL, client_id TEXT NOT NULL,"
        " id INTEGER NOT NULL, ts REAL NOT NULL, seen REAL NOT NULL,"
        " PRIMARY KEY (rid, user, client_id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX dedup_seen ON dedup (seen)")
    db.execute("CREATE TABLE probe (k INTEGER PRIMARY KEY, v BLOB)")


#: version N -> the function that brings a version N-1 database to N (1: create it)
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _schema_v1}


# --------------------------------------------------------------------------- opening


def lock(path: Path) -> TextIO:
    """Take the lock that makes ``path`` one server's; ConfigError if another holds it."""
    lock_path = path.with_name(path.name + "-lock")
    try:
        f = open(lock_path, "a+")  # noqa: SIM115 - held open for the life of the broker
    except OSError as exc:
        raise ConfigError(f"cannot open {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise ConfigError(
            f"{path} is in use by another chatctl serve (pid {holder}): "
            "stop it or choose another --data-dir"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def open_database(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """Open ``path`` (created if missing) at :data:`SCHEMA_VERSION`, in WAL mode.

    Raises ConfigError, having changed nothing, for a file that is not a chatctl database
    (another program's, corrupt, or from a newer chatctl)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        version = _inspect(db, path)
        if version == 0:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only before the first table
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise ConfigError(f"{path}: cannot use write-ahead logging on this file system")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA journal_size_limit = 67108864")
        # Checkpoints are the writer thread's (Writer._committed), never inside a COMMIT
        # that may run on the event loop.
        db.execute("PRAGMA wal_autocheckpoint = 0")
        if version < SCHEMA_VERSION:
            _migrate(db, version)
            if version:
                log.info("upgraded %s from schema %d to %d", path, version, SCHEMA_VERSION)
    except ConfigError:
        db.close()
        raise
    except sqlite3.Error as exc:
        db.close()
        raise ConfigError(f"cannot open the database {path}: {exc}") from None
    return db


def _inspect(db: sqlite3.Connection, path: Path) -> int:
    try:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"{path} is not a chatctl database ({exc}); nothing was changed: "
            "move it away or choose another --data-dir"
        ) from None
    if app_id != APPLICATION_ID and (tables or version):
        raise ConfigError(
            f"{path} is another program's SQLite database; nothing was changed: "
            "choose another --data-dir"
        )
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path} was written by a newer chatctl (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}): upgrade chatctl"
        )
    return int(version)


def _migrate(db: sqlite3.Connection, version: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        for v in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[v](db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# --------------------------------------------------------------------------- operations

#: Rows one INSERT statement writes at most (x 7 columns stays under SQLite's oldest
#: default limit of 999 variables).
ROWS_PER_INSERT = 128


def _chunks(ops: list[Publish]) -> list[list[Publish]]:
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


@dataclass(eq=False, slots=True)
class Op:
    """One unit of work for the writer; ``future`` (a :class:`Publish` has a callback
    instead) is resolved on the loop after COMMIT."""

    future: asyncio.Future[Any] | None = field(default=None, repr=False)
    result: Any = None


@dataclass(eq=False, slots=True)
class Load(Op):
    """Read (or create) a room: id, epoch, counter, its kept history and dedup records."""

    name: str = ""
    history_size: int = 0
    horizon: float = 0.0
    dedup_horizon: float = 0.0
    now: float = 0.0


@dataclass(eq=False, slots=True)
class Evict(Op):
    """The loop no longer holds the room in memory: retention may delete it again."""

    rid: int = 0


@dataclass(eq=False, slots=True)
class Publish(Op):
    """One message to store; ``done`` is called with the outcome."""

    done: PublishDone | None = None
    #: why it was not stored (for the :class:`Reply` of a repeat made while in flight)
    error: Exception | None = None
    room: str = ""
    rid: int = 0
    user: str = ""
    text: str = ""
    kind: str = "text"
    client_id: str | None = None
    ts: float = 0.0
    seen_at: float = 0.0
    history_size: int = 0


@dataclass(eq=False, slots=True)
class Reply(Op):
    """A repeated client id, answered without the database, but queued like a publish so
    that its answer comes in line with those of the publishes queued before it: with the
    ``original`` already stored, or with the outcome of the publish it ``follows``."""

    done: PublishDone | None = None
    original: Message | None = None
    follows: Publish | None = None


@dataclass(eq=False, slots=True)
class Sweep(Op):
    """Retention: messages before ``horizon`` (None: keep), idle rooms, old dedup records.
    ``result`` is True when there is more to delete (the loop sweeps again at once)."""

    horizon: float | None = None
    dedup_horizon: float = 0.0


@dataclass(eq=False, slots=True)
class Checkpoint(Op):
    """Wakes the writer thread for a WAL checkpoint that commits run on the loop made due."""


@dataclass(eq=False, slots=True)
class Call(Op):
    """Run ``fn(connection)`` in the writer's transaction (maintenance, tests)."""

    fn: Callable[[sqlite3.Connection], Any] = lambda db: None


@dataclass(eq=False, slots=True)
class Resume:
    """Queued by the loop once it has failed everything submitted before it saw the failure
    that began refusal episode ``episode``: the writer tries writes again after it."""

    episode: int


@dataclass(frozen=True)
class Failure:
    """Why the writer failed a batch, as reported to ``done``."""

    error: Exception
    #: a fault of the database (full disk, I/O error) rather than a bug: the client may retry
    unavailable: bool
    #: this failure began refusal episode N: the loop fails everything it has in flight and
    #: answers with ``Resume(N)`` (None: a refusal within an episode, or not a fault)
    episode: int | None = None


Item = Op | Resume


class Writer:
    """The thread that owns the connection. ``submit`` from the loop; ``done(batch, failure)``
    is called on the loop after each transaction, in order (``failure`` None: committed)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        loop: asyncio.AbstractEventLoop,
        done: Callable[[list[Op], Failure | None], None],
    ) -> None:
        self._db = db
        self._path = path
        self._loop = loop
        self._done = done
        self._queue: queue.SimpleQueue[list[Item] | None] = queue.SimpleQueue()
        #: rooms the loop holds in memory: retention never deletes them
        self._loaded: set[int] = set()
        #: why writes fail now, None while they work (read from the loop)
        self.fault: str | None = None
        self._fault_since = 0.0
        #: refusal episodes begun so far; the one whose Resume is awaited, None: not refusing
        self._episodes = 0
        self._refusing: int | None = None
        #: a batch is running on the loop's thread (run_here): report it directly
        self._here = False
        #: commits and ops since the last checkpoint; a checkpoint due after a commit on the
        #: loop's thread (the broker then sends the thread a Checkpoint)
        self._commits = 0
        self._rows = 0
        self.checkpoint_wanted = False
        self._thread = threading.Thread(target=self._run, name="chatctl-sqlite", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, items: list[Item]) -> None:
        self._queue.put(items)

    def run_here(self, items: list[Item]) -> None:
        """Run ``items`` on the calling thread, the loop's, and report them before returning.
        Only while the thread has reported everything submitted to it (it then waits on its
        queue and touches the connection no more), so the order of transactions holds."""
        self._here = True
        try:
            self._handle(items)
        finally:
            self._here = False

    def _report(self, batch: list[Op], failure: Failure | None) -> None:
        if self._here:
            self._done(batch, failure)
        else:
            self._loop.call_soon_threadsafe(self._done, batch, failure)

    def stop(self) -> None:
        """Finish what is queued, then close the connection (blocks: call in a thread)."""
        self._queue.put(None)
        self._thread.join()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        get = self._queue.get
        try:
            while True:
                try:
                    ops = get(timeout=PROBE_INTERVAL if self.fault else None)
                except queue.Empty:
                    self._probe()
                    continue
                if ops is None:
                    return
                batch = list(ops)
                stop = False
                with contextlib.suppress(queue.Empty):
                    while True:
                        more = self._queue.get_nowait()
                        if more is None:
                            stop = True
                            break
                        batch.extend(more)
                self._handle(batch)
                if stop:
                    return
        finally:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA optimize")
            self._db.close()

    def _handle(self, items: list[Item]) -> None:
        """Run ``items`` in one transaction; split at Resume markers, refuse what precedes
        the marker the current episode waits for."""
        if self._refusing is None and not any(isinstance(i, Resume) for i in items):
            self._transaction(items)  # type: ignore[arg-type]  # no Resume in it
            return
        ops: list[Op] = []
        for item in items:
            if isinstance(item, Resume):
                self._dispatch(ops)
                ops = []
                if item.episode == self._refusing:
                    self._refusing = None
            else:
                ops.append(item)
        self._dispatch(ops)

    def _dispatch(self, ops: list[Op]) -> None:
        if not ops:
            return
        if self._refusing is None:
            self._transaction(ops)
            return
        for op in ops:
            if isinstance(op, Evict):  # bookkeeping only, no database work
                self._apply(op)
        error = sqlite3.OperationalError(f"refused after a failed write ({self.fault})")
        self._report(ops, Failure(error, unavailable=True))

    def _transaction(self, batch: list[Op]) -> None:
        db = self._db
        failure: Failure | None = None
        try:
            db.execute("BEGIN IMMEDIATE")
            publishes: dict[int, list[Publish]] = {}
            for op in batch:
                if isinstance(op, Publish):
                    publishes.setdefault(op.rid, []).append(op)
                else:
                    self._apply(op)
            for rid, ops in publishes.items():
                self._publish(rid, ops)
            db.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.IntegrityError
            ):
                self._failing(str(exc))
                self._episodes += 1
                self._refusing = self._episodes
                failure = Failure(exc, unavailable=True, episode=self._episodes)
            else:
                log.error("database operation failed", exc_info=exc)
                failure = Failure(exc, unavailable=False)
        else:
            for op in batch:
                if isinstance(op, Load) and op.result is not None:
                    self._loaded.add(op.result[0])
            if self.fault is not None:
                self._probe()
            self._committed(len(batch))
        self._report(batch, failure)

    def _committed(self, ops: int) -> None:
        """After a COMMIT: checkpoint when due, in the thread only."""
        self._commits += 1
        self._rows += ops
        if self._commits < CHECKPOINT_COMMITS and self._rows < CHECKPOINT_ROWS:
            return
        if self._here:
            self.checkpoint_wanted = True
            return
        self._commits = self._rows = 0
        self.checkpoint_wanted = False
        try:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the next one tries again
            log.warning("WAL checkpoint of %s failed: %s", self._path, exc)

    def _apply(self, op: Op) -> None:
        db = self._db
        if isinstance(op, Load):
            op.result = self._load(op)
        elif isinstance(op, Evict):
            self._loaded.discard(op.rid)
        elif isinstance(op, Sweep):
            op.result = self._sweep(op)
        elif isinstance(op, Call):
            op.result = op.fn(db)

    def _load(self, op: Load) -> tuple[int, str, int, float, list[Any], list[Any]]:
        db = self._db
        row = db.execute(
            "SELECT rid, epoch, last_id, touched FROM rooms WHERE name = ?", (op.name,)
        ).fetchone()
        if row is None:
            from chatctl.broker.rooms import new_epoch

            epoch = new_epoch()
            (rid,) = db.execute(
                "INSERT INTO rooms (name, epoch, last_id, touched) VALUES (?, ?, 0, ?)"
                " RETURNING rid",
                (op.name, epoch, op.now),
            ).fetchone()
            return rid, epoch, 0, op.now, [], []
        rid, epoch, last, touched = row
        messages = db.execute(
            "SELECT id, user, text, ts, kind, client_id FROM messages"
            " WHERE rid = ? AND id > ? AND ts >= ? ORDER BY id",
            (rid, last - op.history_size, op.horizon),
        ).fetchall()
        seen = db.execute(
            "SELECT user, client_id, id, ts, seen FROM dedup WHERE rid = ? AND seen >= ?"
            " ORDER BY seen",
            (rid, op.dedup_horizon),
        ).fetchall()
        return rid, epoch, last, touched, messages, seen

    def _publish(self, rid: int, ops: list[Publish]) -> None:
        db = self._db
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
        for part in _chunks(ops):
            values = [
                v
                for op in part
                for v in (rid, op.result, op.user, op.text, op.ts, op.kind, op.client_id)
            ]
            db.execute(_insert("INSERT INTO messages VALUES", 7, len(part)), values)
            seen = [op for op in part if op.client_id is not None]
            if seen:
                values = [
                    v
                    for op in seen
                    for v in (rid, op.user, op.client_id, op.result, op.ts, op.seen_at)
                ]
                db.execute(_insert("INSERT OR REPLACE INTO dedup VALUES", 6, len(seen)), values)
        keep = ops[-1].history_size
        if last > keep:
            db.execute("DELETE FROM messages WHERE rid = ? AND id <= ?", (rid, last - keep))

    def _sweep(self, op: Sweep) -> bool:
        db = self._db
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
                if rid not in self._loaded
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

    # ------------------------------------------------------------------ faults

    def _failing(self, reason: str) -> None:
        if self.fault is None:
            self._fault_since = time.monotonic()
            log.error(
                "cannot write the database %s (%s): messages are refused until writes work "
                "again; /healthz answers 503",
                self._path,
                reason,
            )
        self.fault = reason

    def _probe(self) -> None:
        """Try a small write; clears the fault when it commits."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR REPLACE INTO probe (k, v) VALUES (1, zeroblob(16384))")
            db.execute("DELETE FROM probe")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self.fault = str(exc)
            return
        if self.fault is not None:
            log.warning(
                "the database %s is writable again after %.1fs: accepting messages",
                self._path,
                time.monotonic() - self._fault_since,
            )
            self.fault = None
