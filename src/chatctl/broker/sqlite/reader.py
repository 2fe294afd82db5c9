"""The SQLite broker's reader: a second connection, in its own thread, that reads a room's
history and de-duplication records when the room is first used; and a third, in the same
thread, that checkpoints the WAL.

A big room (a 1,000-message history, up to 200,000 client ids) takes a few hundred
milliseconds to read and to turn into the objects the room holds in memory. Done by the
writer, it would hold up every other room's commits for that long; done on the loop, every
connection. Here it only shares the GIL: in WAL mode a read never waits for the writer (and
the writer never for it), and the room's row, read or created by the writer first, keeps the
room from retention while it loads (publishes to it wait in memory until it is installed).

Checkpoints (PASSIVE: they never wait for a lock, and writers never wait for them) run here,
not in the writer thread: a checkpoint there kept the writer busy for its milliseconds, so
the publishes meanwhile went to the thread instead of being committed on the loop, and every
one of their statements waited for the busy loop to hand over the GIL (up to a switch
interval, 5 ms, each): a stall of 100-400 ms every 256 commits under a busy fan-out.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chatctl.broker.rooms import DedupRecords, Kept
from chatctl.broker.sqlite import store
from chatctl.broker.sqlite.ops import Load

log = logging.getLogger("chatctl.broker.sqlite")

#: Passes one checkpoint makes at most to catch up with the commits made while it ran.
CHECKPOINT_PASSES = 3

#: Seconds a read waits for a lock (only a WAL reset or recovery takes one a reader needs).
READ_TIMEOUT = 5.0

RoomData = tuple[deque[Kept], DedupRecords]


class Reader:
    """Reads rooms in one thread of its own, on its own connection (opened on first use)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="chatctl-sqlite-read")
        self._db: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None
        #: a checkpoint is queued or running (at most one at a time)
        self._checkpointing = False

    async def read(self, op: Load, rid: int, last: int) -> RoomData:
        """The room's history and dedup records (see :func:`store.read_room`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read, op, rid, last)

    def _read(self, op: Load, rid: int, last: int) -> RoomData:
        db = self._db
        if db is None:
            db = sqlite3.connect(
                self._path, timeout=READ_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA query_only = 1")
            self._db = db
        db.execute("BEGIN")  # one snapshot for both queries
        try:
            return store.read_room(db, op, rid, last)
        finally:
            db.execute("COMMIT")

    def checkpoint(self) -> None:
        """Checkpoint the WAL in this thread, soon (from any thread; never blocks). A
        checkpoint asked for while one is queued or running is that one."""
        if self._checkpointing:
            return
        self._checkpointing = True
        try:
            self._executor.submit(self._checkpoint)
        except RuntimeError:  # closed
            self._checkpointing = False

    async def settled(self) -> None:
        """Return once what this thread was given so far (reads, a checkpoint) is done."""
        await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)

    def _checkpoint(self) -> None:
        try:
            db = self._checkpointer
            if db is None:
                db = self._checkpointer = sqlite3.connect(
                    self._path, isolation_level=None, check_same_thread=False
                )
            # Commits go on meanwhile; the WAL starts again from its beginning (and is
            # truncated to journal_size_limit) at the first commit after a checkpoint that
            # caught up with all of it: a second or third pass copies only the frames
            # committed during the first.
            for _ in range(CHECKPOINT_PASSES):
                busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if busy or copied >= frames:
                    break
        except sqlite3.Error as exc:  # the next one tries again
            log.warning("WAL checkpoint of %s failed: %s", self._path, exc)
        finally:
            self._checkpointing = False

    def close(self) -> None:
        """Finish the read or checkpoint under way and close the connections (blocks: call
        in a thread)."""
        self._executor.shutdown(wait=True)
        for db in (self._db, self._checkpointer):
            if db is not None:
                db.close()
        self._db = self._checkpointer = None
