"""Logging for ``chatctl serve``: text or JSON lines on stderr, with tokens never written.

chatctl's own log lines never include a token, but request paths (``?token=…`` from browsers),
``Authorization`` headers and exception messages of other libraries might; every record goes
through :class:`RedactTokens` before it is formatted, whoever logged it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Literal, TextIO, get_args

from chatctl.errors import UsageError

LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]
FORMATS: tuple[str, ...] = get_args(LogFormat)
LEVELS: tuple[str, ...] = get_args(LogLevel)

_SECRETS = [
    # ?token=… / &token=… in a URL or query string
    (re.compile(r"(?i)([?&;]token=)[^&\s\"'#]*"), r"\1[redacted]"),
    # a webhook URL's token: /hooks/…
    (re.compile(r"(/hooks/)[^/\s?#\"']+"), r"\1[redacted]"),
    # Authorization: Bearer …
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
    # anything shaped like a JWT (three base64url parts, the first two JSON objects)
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
]


def redact(text: str) -> str:
    """``text`` with tokens, bearer credentials and JWTs replaced."""
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


class RedactTokens(logging.Filter):
    """Render each record's message, redact it, and freeze it (args cleared)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we can, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC ISO 8601), ``level``, ``logger``, ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            obj["exc"] = record.exc_text
        return json.dumps(obj, ensure_ascii=False)


def setup_logging(level: str, fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Send every log record, redacted, to ``stream`` (stderr) as text or JSON lines."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise UsageError(f"unknown log level {level!r}: use {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise UsageError(f"unknown log format {fmt!r}: use text or json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactTokens())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # No record is formatted with its source file, line or function; finding them walks the
    # caller's stack, which gives every connection handler's coroutine a frame object that
    # then lives (~300 bytes) as long as the connection. The logging HOWTO's "Optimization".
    logging._srcfile = None
    # websockets' own INFO lines repeat ours (and would show request paths): keep its warnings.
    logging.getLogger("websockets").setLevel(max(numeric, logging.WARNING))
