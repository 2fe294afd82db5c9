"""Rooms recently used on this machine: what shell completion offers after ``join``/``send``.

The list lives in ``$XDG_STATE_HOME/chatctl/rooms`` (default ``~/.local/state/chatctl/rooms``):
one room name per line, most recent first, at most :data:`MAX_ROOMS` lines. It is a
convenience, so nothing here ever raises because of the file system: a read-only or missing
state directory just means no suggestions.

Contract for the clients (``chatctl join`` and ``chatctl send``): call
:func:`remember_room` once a connection to a room was accepted by the server (after the
``welcome`` frame), never for a room that was refused, so that mistyped names do not come back
as completions. It is cheap (one small file rewritten) and safe to call from many processes
at once: writers take an exclusive ``flock`` on ``rooms.lock`` for their read-modify-write
and replace the file atomically, so readers never see a half-written file and no update is
lost. Shell completion calls :func:`complete_room` through the ROOM parameter's
``autocompletion`` callback.

This module imports only the standard library and :mod:`chatctl.config` (completion runs on
every Tab press; it must start fast).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from chatctl.config import locked, state_dir

#: How many rooms the file keeps.
MAX_ROOMS = 50
#: The protocol's room rule (``chatctl.protocol.ROOM_RE``, repeated to keep imports light).
_ROOM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def rooms_file() -> Path:
    """Where the recent rooms are kept (it may not exist)."""
    return state_dir() / "rooms"


def _read(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    seen: dict[str, None] = {}
    for line in text.splitlines():
        room = line.strip()
        if _ROOM_RE.fullmatch(room):
            seen.setdefault(room)
    return list(seen)


def remember_room(room: str) -> None:
    """Put ``room`` first in the recent-rooms file (moving it up if it is already there).

    Invalid room names are ignored. Keeps at most :data:`MAX_ROOMS` rooms. Never raises for
    file-system problems (they are silently ignored: completion is a convenience).
    """
    if not _ROOM_RE.fullmatch(room):
        return
    path = rooms_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with locked(path.parent / "rooms.lock"):
            rooms = [room] + [r for r in _read(path) if r != room]
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rooms.", text=True)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write("".join(f"{r}\n" for r in rooms[:MAX_ROOMS]))
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except OSError:
        return


def recent_rooms(limit: int = MAX_ROOMS) -> list[str]:
    """The rooms recently used, most recent first, without duplicates or invalid names."""
    return _read(rooms_file())[:limit]


def complete_room(incomplete: str) -> list[str]:
    """Shell completion for a ROOM parameter: recent rooms starting with ``incomplete``.

    Use as ``typer.Argument(autocompletion=complete_room)`` (or ``typer.Option``).
    """
    return [room for room in recent_rooms() if room.startswith(incomplete)]
