"""Where the SQLite broker's database is: ``sqlite:`` URLs, data directories, options."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from chatctl.errors import UsageError

#: File name of the database inside a data directory.
DB_NAME = "chatctl.db"
SYNCHRONOUS = ("normal", "full")


def database_path(location: str | Path) -> Path:
    """The database file for ``location``: a file, or a directory that holds chatctl.db."""
    path = Path(location).expanduser()
    if path.is_dir() or str(location).endswith("/"):
        return path / DB_NAME
    return path


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///abs/path`` (a file, or a directory ending in ``/``) or ``sqlite:rel/path``,
    optionally with ``?synchronous=full``: the path and the broker options."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path:
        raise UsageError(
            f"invalid SQLite URL {url!r}: use sqlite:///absolute/path or sqlite:relative/path"
        )
    query = dict(parse_qsl(parts.query))
    unknown = sorted(set(query) - {"synchronous"})
    if unknown:
        raise UsageError(f"unknown SQLite URL option {unknown[0]!r} (known: synchronous)")
    return path, query
