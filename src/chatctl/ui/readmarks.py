"""The read marker kept across runs: per room, the last message the user has seen (its id and
the room's epoch), in ``$XDG_STATE_HOME/chatctl/read`` (default ``~/.local/state/chatctl/read``),
one JSON object ``{"ROOM": {"id": ID, "epoch": "EPOCH"}, ...}``.

``chatctl join ROOM`` on a terminal resumes each room from its mark (``?since=ID&epoch=E``), so
only what is new is shown, under a "new messages" line. Several clients may save at once:
writers take an exclusive ``flock`` on ``read.lock``, merge their rooms into what the file
holds and replace it atomically. Nothing here raises for file-system trouble: without a
writable state directory the client just starts from the room's recent history.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatctl.config import locked, state_dir

#: How many rooms the file keeps (the most recently saved ones).
MAX_MARKS = 200


@dataclass(frozen=True)
class Mark:
    """The last message seen in a room: its ``id`` in the room's ``epoch``."""

    id: int
    epoch: str | None


def marks_file() -> Path:
    return state_dir() / "read"


def _parse(data: Any) -> dict[str, Mark]:
    marks: dict[str, Mark] = {}
    if not isinstance(data, dict):
        return marks
    for room, value in data.items():
        if not isinstance(value, dict):
            continue
        mid, epoch = value.get("id"), value.get("epoch")
        if isinstance(mid, int) and not isinstance(mid, bool) and mid >= 0:
            marks[str(room)] = Mark(mid, epoch if isinstance(epoch, str) else None)
    return marks


def load_marks() -> dict[str, Mark]:
    """Every room's mark (empty when the file is missing or unreadable)."""
    try:
        return _parse(json.loads(marks_file().read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def save_marks(changed: Mapping[str, Mark]) -> None:
    """Merge ``changed`` into the file (a room's newer mark replaces its older one)."""
    if not changed:
        return
    path = marks_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with locked(path.parent / "read.lock"):
            marks = load_marks()
            for room in changed:
                marks.pop(room, None)
            marks.update(changed)  # most recent last
            kept = list(marks.items())[-MAX_MARKS:]
            data = {room: {"id": m.id, "epoch": m.epoch} for room, m in kept}
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".read.", text=True)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except OSError:
        return
