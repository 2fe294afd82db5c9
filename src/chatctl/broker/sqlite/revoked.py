"""Revoked tokens in the SQLite file: the ``revocations`` table, written by the server (``POST
/api/revoke``) and by ``chatctl token revoke`` on the host, read by the server every half
second (its ``AUTOINCREMENT`` counter says cheaply whether anything was added).

::

    revocations  id (AUTOINCREMENT), field ("jti:ID" or "user:NAME", unique), entry (JSON), exp

Plain functions of a connection, each in the caller's transaction.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from chatctl.errors import ConfigError
from chatctl.tokens.revocation import Revocation


def create_table(db: sqlite3.Connection) -> None:
    """Migration 2 of the schema."""
    db.execute(
        "CREATE TABLE revocations (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " field TEXT NOT NULL UNIQUE, entry TEXT NOT NULL, exp REAL NOT NULL)"
    )


def store(db: sqlite3.Connection, entry: Revocation) -> None:
    """Add ``entry`` (a user's later cut-off replaces an earlier one, never the reverse);
    entries whose tokens have all expired are deleted meanwhile."""
    db.execute("DELETE FROM revocations WHERE exp <= ?", (time.time(),))
    row = db.execute("SELECT entry FROM revocations WHERE field = ?", (entry.field,)).fetchone()
    if row is not None:
        old = Revocation.from_json(row[0])
        if old is not None and old.before >= entry.before and old.exp >= entry.exp:
            return
    db.execute(
        "INSERT OR REPLACE INTO revocations (field, entry, exp) VALUES (?, ?, ?)",
        (entry.field, entry.to_json(), entry.exp),
    )


def version(db: sqlite3.Connection) -> int:
    """Changes with every entry stored (the table's AUTOINCREMENT counter)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'revocations'").fetchone()
    return 0 if row is None else int(row[0])


def read(db: sqlite3.Connection, seen: str) -> tuple[str, list[Revocation] | None]:
    """The version, and every entry not yet expired when it differs from ``seen``."""
    current = str(version(db))
    if current == seen:
        return current, None
    rows = db.execute("SELECT entry FROM revocations WHERE exp > ?", (time.time(),)).fetchall()
    entries = [Revocation.from_json(text) for (text,) in rows]
    return current, [e for e in entries if e is not None]


def revoke_in_file(path: Path, entry: Revocation) -> None:
    """``chatctl token revoke`` on the server's host: store ``entry`` in the database at
    ``path``, which a server (running or not) has created; ConfigError if there is none."""
    from chatctl.broker.sqlite.schema import APPLICATION_ID, SCHEMA_VERSION

    if not path.is_file():
        raise ConfigError(
            f"no chatctl database at {path}: give the --data-dir or --broker chatctl serve uses"
        )
    try:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the database {path}: {exc}") from None
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        schema = db.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise ConfigError(f"{path} is not a chatctl database")
        if schema < 2:
            raise ConfigError(f"{path} is from an older chatctl: start chatctl serve once")
        if schema > SCHEMA_VERSION:
            raise ConfigError(f"{path} was written by a newer chatctl: upgrade chatctl")
        db.execute("BEGIN IMMEDIATE")
        store(db, entry)
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot write the database {path}: {exc}") from None
    finally:
        db.close()
