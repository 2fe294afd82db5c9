"""The SQLite broker's reader: a second connection, in its own thread, that reads a room's
history and de-duplication records when the room is first used.

A big room (a 1,000-message history, up to 200,000 client ids) takes a few hundred
milliseconds to read and to turn into the objects the room holds in memory. Done by the
writer, it would hold up every other room's commits for that long; done on the loop, every
connection. Here it only shares the GIL: in WAL mode a read never waits for the writer (and
the writer never for it), and the room's row, read or created by the writer first, keeps the
room from retention while it loads (publishes to it wait in memory until it is installed).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chatctl.broker.sqlite import store
from chatctl.broker.sqlite.ops import Load
from chatctl.protocol import Message

#: Seconds a read waits for a lock (only a WAL reset or recovery takes one a reader needs).
READ_TIMEOUT = 5.0

RoomData = tuple[deque[Message], OrderedDict[tuple[str, str], tuple[int, float, float]]]


class Reader:
    """Reads rooms in one thread of its own, on its own connection (opened on first use)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="chatctl-sqlite-read")
        self._db: sqlite3.Connection | None = None

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

    def close(self) -> None:
        """Finish the read under way and close the connection (blocks: call in a thread)."""
        self._executor.shutdown(wait=True)
        if self._db is not None:
            self._db.close()
            self._db = None
