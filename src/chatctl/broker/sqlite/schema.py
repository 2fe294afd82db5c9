"""The SQLite broker's file: its schema and migrations, the lock that makes it one server's,
and opening it.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`; :data:`MIGRATIONS` brings an older
file forward in one transaction at start; ``PRAGMA application_id`` marks the file as ours)::

    rooms     rid, name, epoch, last_id, touched (newest message or creation); v5: the
                           room's id counter and touched are these or its newest message's,
                           whichever is higher (written before a delete that may take it)
    messages  (rid, id) -> user, text, ts, kind, client_id,     kept history, trimmed by
                           display (v3: a webhook's display name, NULL = none)    the sweep;
                           moderation (v4: an announcement's record, JSON), deleted (v4: 1
                           for a tombstone, whose text is then empty); v5: kept within the
                           de-duplication window, whose records they are
    dedup     (rid, user, client_id) -> id, ts, seen            v5: the client ids within
                           the window of messages retention deleted (v1-4: every one)
    sanctions (room, kind, user) -> entry (JSON), until         mutes and bans (v4; by room
                           name: retention forgetting a room forgets none of them)
    revocations  id, field -> entry, exp        revoked tokens (schema 2: broker/sqlite/revoked.py)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from chatctl.broker.sqlite.revoked import create_table as create_revocations
from chatctl.errors import ConfigError

log = logging.getLogger("chatctl.broker.sqlite")

SCHEMA_VERSION = 5
#: "chat": tells a chatctl database from any other SQLite file
APPLICATION_ID = 0x63686174
#: WAL frames (pages, 4 KiB) after which the writer checkpoints in its own COMMIT: the WAL
#: stays under ~32 MiB under any load. Below it (any load with pauses of a few ms) the
#: reader's thread keeps up alone and this never runs.
WAL_CATCH_UP_FRAMES = 8192
#: Seconds ``PRAGMA quick_check`` may take at start (about 1 GB on a fast disk); a bigger
#: file is checked that far and taken as sound.
CHECK_SECONDS = 10.0
#: Rows one sweep deletes per table at most, so a sweep never holds up commits for long.


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


def _display_v3(db: sqlite3.Connection) -> None:
    """A message's display name (a webhook's Slack ``username``); NULL for the older ones."""
    db.execute("ALTER TABLE messages ADD COLUMN display TEXT")


def _moderation_v4(db: sqlite3.Connection) -> None:
    """Moderation: an announcement's record and a message's tombstone flag; the sanctions."""
    db.execute("ALTER TABLE messages ADD COLUMN moderation TEXT")
    db.execute("ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "CREATE TABLE sanctions (room TEXT NOT NULL, kind TEXT NOT NULL, user TEXT NOT NULL,"
        " entry TEXT NOT NULL, until REAL, PRIMARY KEY (room, kind, user)) WITHOUT ROWID"
    )


def _dedup_in_messages_v5(db: sqlite3.Connection) -> None:
    """A publish writes one b-tree: its message row, which is its de-duplication record too;
    it updates neither its room (the counter is derived from the newest message) nor a dedup
    table, and retention walks each room's messages by id (no index on ts). So: the index
    goes, and the dedup records of messages still stored (the others are kept). The version
    matters as much: a schema-4 chatctl would take the rooms' stale ``last_id`` for their
    counters and give ids out again."""
    db.execute("DROP INDEX messages_ts")
    db.execute(
        "DELETE FROM dedup WHERE EXISTS (SELECT 1 FROM messages m WHERE m.rid = dedup.rid"
        " AND m.id = dedup.id AND m.user = dedup.user AND m.client_id = dedup.client_id)"
    )


#: version N -> the function that brings a version N-1 database to N (1: create it)
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _schema_v1,
    2: create_revocations,
    3: _display_v3,
    4: _moderation_v4,
    5: _dedup_in_messages_v5,
}


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
    (another program's, corrupt, or from a newer chatctl), and for one that is not a regular
    file, fails :func:`check`, or cannot be written."""
    if path.exists() and not path.is_file():
        raise ConfigError(
            f"{path} is not a regular file: move it away or choose another --data-dir"
        )
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        version = _inspect(db, path)
        if version == 0:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only before the first table
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise ConfigError(f"{path}: cannot use write-ahead logging on this file system")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA journal_size_limit = 67108864")
        # Checkpoints run in the reader's thread on a connection of their own
        # (Writer._committed), so that a COMMIT on the event loop does not copy the WAL. But
        # under a steady load they never catch up with the writer, and the WAL is reset only
        # at the first write after one that did: it grew without end (579 MB after 30 s of
        # 2,500 msg/s in single-message commits, 20 MB/s). So once the WAL holds
        # WAL_CATCH_UP_FRAMES frames, the writer's own COMMIT checkpoints what the reader's
        # thread has not copied yet; no other write can come meanwhile, so it catches up,
        # and the next write starts the WAL again (truncated to journal_size_limit).
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CATCH_UP_FRAMES}")
        if version < SCHEMA_VERSION:
            _migrate(db, version)
            if version:
                log.info("upgraded %s from schema %d to %d", path, version, SCHEMA_VERSION)
        check(db, path)
        # Never wait for another process's lock inside SQLite: on the event loop that would
        # stall every connection; the writer thread waits for it itself (Writer._begin).
        db.execute("PRAGMA busy_timeout = 0")
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


def is_corrupt(exc: BaseException) -> bool:
    """Whether ``exc`` says the file is damaged (not full, locked or unwritable)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def check(db: sqlite3.Connection, path: Path) -> None:
    """Fail with ConfigError unless ``db`` passes ``PRAGMA quick_check`` (stopped, and the file
    taken as sound, after :data:`CHECK_SECONDS` on a very big file) and takes a write: SQLite
    opens a file it may not write (a read-only file, or the server running as a user who
    does not own it) read-only without a word."""
    deadline = time.monotonic() + CHECK_SECONDS
    db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        result = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.OperationalError as exc:
        if "interrupted" not in str(exc):
            raise
        log.info("%s: quick_check stopped after %gs, the rest not checked", path, CHECK_SECONDS)
        result = "ok"
    except sqlite3.DatabaseError as exc:
        result = str(exc)
    finally:
        db.set_progress_handler(None, 0)
    if result != "ok":
        result = " ".join(str(result).replace("*** in database main ***", "").split())
        raise ConfigError(
            f"{path} is corrupt (quick_check: {result}): restore it from a backup "
            "(docs/deploy.md) or choose another --data-dir"
        )
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO probe (k, v) VALUES (1, zeroblob(16))")
        db.execute("DELETE FROM probe")
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise ConfigError(
            f"cannot write the database {path} ({exc}): check the owner and mode of the file "
            "and of its directory, or choose another --data-dir"
        ) from None
