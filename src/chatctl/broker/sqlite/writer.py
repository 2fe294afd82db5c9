"""The SQLite broker's writer: the thread that owns the one connection and runs every
database operation, in the order they were submitted.

Whatever is queued when it starts a transaction goes into that transaction (group
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
every op it takes from the queue until the loop's :class:`~chatctl.broker.sqlite.ops.Resume`
marker of that episode comes. The loop queues the marker when it handles the failure, after
failing every op it had submitted and not yet seen finished; so everything queued before the
marker was already failed on the loop, and nothing submitted before a refusal was delivered
ever commits. Both channels are FIFO (the queue; ``call_soon_threadsafe`` from this one
thread), which is what makes this exact rather than likely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from chatctl.broker.sqlite import store
from chatctl.broker.sqlite.ops import Call, Evict, Failure, Item, Load, Op, Publish, Resume, Sweep
from chatctl.broker.sqlite.schema import is_corrupt

log = logging.getLogger("chatctl.broker.sqlite")

#: Seconds between write probes while writes fail (full disk, I/O error).
PROBE_INTERVAL = 1.0
#: The WAL is checkpointed into the database (PASSIVE: it never waits), by the reader's thread
#: on a connection of its own (:meth:`~chatctl.broker.sqlite.reader.Reader.checkpoint`), after
#: this many commits or rows, whichever comes first: about SQLite's own auto-checkpoint at
#: 1,000 pages (a one-message commit writes 4-5 pages), which is off because it runs inside
#: the COMMIT that crosses it and so, for a commit on the loop's thread, would stall every
#: connection for the milliseconds it takes (the 50-room bench's p99 went from 4 to 7-8 ms).
CHECKPOINT_COMMITS = 256
CHECKPOINT_ROWS = 20_000
#: Seconds the thread waits for another process's write lock on the database (an operator's
#: ``sqlite3`` shell in ``BEGIN IMMEDIATE``) before it fails the transaction's messages with
#: ``broker_unavailable``. The loop never waits for it: a batch found locked goes to the thread.
LOCK_WAIT = 5.0


class _Locked(Exception):
    """Another process holds the write lock, and this transaction runs on the loop."""


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


class Writer:
    """The thread that owns the connection. ``submit`` from the loop; ``done(batch, failure)``
    is called on the loop after each transaction, in order (``failure`` None: committed)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._db = db
        self._path = path
        self._loop = loop
        #: called with each transaction's outcome, on the loop (set by the dispatcher)
        self.done: Callable[[list[Op], Failure | None], None] = lambda batch, failure: None
        self._queue: queue.SimpleQueue[list[Item] | None] = queue.SimpleQueue()
        #: rooms the loop holds in memory (retention never deletes them) -> their id counter,
        #: committed: ids are given out here, not read from the database each transaction
        self._loaded: dict[int, int] = {}
        #: rooms published to whose history the sweep may have to trim
        self._dirty: set[int] = set()
        #: the sweeps walk the rooms: where the next one goes on
        self._cursor = store.Cursor()
        #: why writes fail now, None while they work (read from the loop)
        self.fault: str | None = None
        #: the file was found damaged: refused until a restart (after a restore)
        self.corrupt = False
        self._fault_since = 0.0
        #: refusal episodes begun so far; the one whose Resume is awaited, None: not refusing
        self._episodes = 0
        self._refusing: int | None = None
        #: a batch is running on the loop's thread (run_here): report it directly
        self._here = False
        #: commits and ops since the last checkpoint, and who runs one (the broker sets it)
        self._commits = 0
        self._rows = 0
        self.checkpoint: Callable[[], None] = lambda: None
        self._thread = threading.Thread(target=self._run, name="chatctl-sqlite", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, items: list[Item]) -> None:
        self._queue.put(items)

    def run_here(self, items: list[Item]) -> bool:
        """Run ``items`` on the calling thread, the loop's, and report them before returning.
        Only while the thread has reported everything submitted to it (it then waits on its
        queue and touches the connection no more), so the order of transactions holds.

        False, having done and reported nothing, when another process holds the write lock:
        the loop never waits for it (the caller hands ``items`` to the thread instead)."""
        self._here = True
        try:
            self._handle(items)
        except _Locked:
            return False
        finally:
            self._here = False
        return True

    def _report(self, batch: list[Op], failure: Failure | None) -> None:
        if self._here:
            self.done(batch, failure)
        else:
            self._loop.call_soon_threadsafe(self.done, batch, failure)

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
            self._begin()
            publishes: dict[int, list[Publish]] = {}
            for op in batch:
                if isinstance(op, Publish):
                    publishes.setdefault(op.rid, []).append(op)
                else:
                    self._apply(op)
            loaded = self._loaded
            counters = {
                rid: store.publish(db, rid, ops, loaded[rid]) for rid, ops in publishes.items()
            }
            db.execute("COMMIT")
        except Exception as exc:
            if isinstance(exc, _Locked):
                raise
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.IntegrityError
            ):
                self._failing(exc)
                self._episodes += 1
                self._refusing = self._episodes
                failure = Failure(exc, unavailable=True, episode=self._episodes)
            else:
                log.error("database operation failed", exc_info=exc)
                failure = Failure(exc, unavailable=False)
        else:
            for op in batch:
                if isinstance(op, Load) and op.result is not None:
                    self._loaded[op.result[0]] = op.result[2]
                    self._dirty.add(op.result[0])
            self._loaded.update(counters)  # given out only once committed
            self._dirty.update(counters)
            if self.fault is not None:
                self._probe()
            self._committed(len(batch))
        self._report(batch, failure)

    def _begin(self) -> None:
        """``BEGIN IMMEDIATE`` (take the write lock). The connection's busy timeout is 0: on
        the loop's thread a lock held by another process raises :class:`_Locked` at once; in
        the thread it is waited for, up to :data:`LOCK_WAIT` seconds, without the GIL."""
        deadline = None
        delay = 0.001
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if self._here:
                    raise _Locked from None
                now = time.monotonic()
                if deadline is None:
                    deadline = now + LOCK_WAIT
                elif now >= deadline:
                    raise sqlite3.OperationalError(
                        f"database is locked by another process for {LOCK_WAIT:g}s"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _committed(self, ops: int) -> None:
        """After a COMMIT: ask for a checkpoint when one is due (on another connection, in
        another thread: neither the loop nor this thread waits for it)."""
        self._commits += 1
        self._rows += ops
        if self._commits < CHECKPOINT_COMMITS and self._rows < CHECKPOINT_ROWS:
            return
        self._commits = self._rows = 0
        self.checkpoint()

    def _apply(self, op: Op) -> None:
        db = self._db
        if isinstance(op, Load):
            op.result = store.load(db, op)
        elif isinstance(op, Evict):
            self._loaded.pop(op.rid, None)
        elif isinstance(op, Sweep):
            more = store.sweep(db, op, self._loaded, self._cursor)
            dirty = set(self._dirty)  # kept as it was if the transaction fails
            trimming, self._cursor.trim_after = store.trim_rooms(
                db, op, self._loaded, dirty, self._cursor.trim_after
            )
            self._dirty = dirty
            op.result = more or trimming
        elif isinstance(op, Call):
            op.result = op.fn(db)

    # ------------------------------------------------------------------ faults

    def _failing(self, exc: Exception) -> None:
        if self.corrupt:
            return
        if is_corrupt(exc):  # a damaged file does not heal: no probe clears this one
            self.corrupt = True
            self.fault = f"the database is corrupt ({exc})"
            log.error(
                "the database %s is corrupt (%s): messages are refused and /healthz answers "
                "503 until it is restored from a backup (docs/deploy.md)",
                self._path,
                exc,
            )
            return
        if self.fault is None:
            self._fault_since = time.monotonic()
            log.error(
                "cannot write the database %s (%s): messages are refused until writes work "
                "again; /healthz answers 503",
                self._path,
                exc,
            )
        self.fault = f"cannot write the database ({exc})"

    def _probe(self) -> None:
        """Try a small write; clears the fault when it commits (not a corrupt file's)."""
        if self.corrupt:
            return
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR REPLACE INTO probe (k, v) VALUES (1, zeroblob(16384))")
            db.execute("DELETE FROM probe")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self.fault = f"cannot write the database ({exc})"
            return
        if self.fault is not None:
            log.warning(
                "the database %s is writable again after %.1fs: accepting messages",
                self._path,
                time.monotonic() - self._fault_since,
            )
            self.fault = None
