"""The ends of a stretch of history, as ``chatctl history --since/--until`` take them: a
message id (``1200``), an id in its epoch (``1200@5f2c9a1e``), a duration back from now
(``90s``, ``15m``, ``1h``, ``2d``, ``1w``, ``1h30m``) or an ISO 8601 date or time
(``2026-12-05``, ``2026-12-05T14:00``, ``2026-12-05 14:00:00+01:00``; local time without
an offset). Plain functions, no I/O: the clock is passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from chatctl.errors import UsageError
from chatctl.protocol import EPOCH_RE

#: seconds per unit of a duration
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d{1,9}[smhdw])+")
_PART = re.compile(r"(\d+)([smhdw])")

FORMS = "ID, ID@EPOCH, a duration (90s, 15m, 1h, 2d, 1w, 1h30m) or an ISO date/time"


@dataclass(frozen=True)
class Bound:
    """One end: a message ``id`` (with the ``epoch`` it was seen in, when known) or a time
    ``ts`` (Unix seconds)."""

    id: int | None = None
    epoch: str | None = None
    ts: float | None = None


def parse_bound(flag: str, value: str, *, now: float) -> Bound:
    """``value`` of ``flag`` (for the error message) as a :class:`Bound`; durations count
    back from ``now``. A usage error names the forms taken."""
    text = value.strip()
    head, at, epoch = text.partition("@")
    if head.isascii() and head.isdigit() and len(head) <= 19:
        if at and EPOCH_RE.fullmatch(epoch) is None:
            raise UsageError(
                f"{flag} {value!r}: the epoch is 1-64 characters from A-Z a-z 0-9 . _ - "
                "(as 'chatctl history --json' or a welcome gives it)"
            )
        return Bound(id=int(head), epoch=epoch if at else None)
    if _DURATION.fullmatch(text):
        seconds = sum(int(n) * UNITS[unit] for n, unit in _PART.findall(text))
        return Bound(ts=now - seconds)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} {value!r}: expected {FORMS}") from None
    try:
        return Bound(ts=when.timestamp())  # a naive time is local time
    except (OverflowError, OSError, ValueError):
        raise UsageError(f"{flag} {value!r}: not a time this system can represent") from None
