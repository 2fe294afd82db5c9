"""chatctl: a command-line chat toolkit built on WebSockets."""

from __future__ import annotations

__version__ = "0.1.0"
