"""Token text shown to people: times as UTC dates, attacker-chosen text as one printable line."""

from __future__ import annotations

import time


def one_line(text: str, limit: int = 100) -> str:
    """``text`` as a short printable one-liner: attacker-chosen text (a JWT header's ``crit``
    names, its ``alg``) goes into HTTP bodies and logs, never a newline or control character."""
    if not text.isprintable():
        text = ascii(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_time(when: float) -> str:
    """``2026-12-01 00:53:11 UTC``; the number itself when no calendar date fits it."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    except (OverflowError, OSError, ValueError):
        return repr(when)
