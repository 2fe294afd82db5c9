"""Turn chat events into terminal lines: rich ``Text`` rendered to ANSI strings.

The strings are printed through prompt-toolkit's ``patch_stdout(raw=True)`` so they appear
above the input line with their colours intact. Nothing from a peer reaches the terminal
unfiltered: :mod:`chatctl.client.sanitize` drops control characters (escape sequences
included), bidi controls and zero-width characters, as for ``chatctl join`` in scripts.

Line shapes (the markers keep them apart without colour too)::

    18:02:11 alice: hello bob            a message (name in a stable per-user colour)
    18:02:15 * alice waves               an action (/me)
    18:02:20 -!- bob joined ops          a system line (joins, leaves, reconnects, notices)
"""

from __future__ import annotations

import io
import os
import re
import time
import zlib
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.text import Text

from chatctl.client.sanitize import multi_line
from chatctl.protocol import Message

#: Colours handed out to user names by a stable hash of the name.
PALETTE = (
    "cyan",
    "green",
    "yellow",
    "blue",
    "magenta",
    "bright_cyan",
    "bright_green",
    "bright_yellow",
    "bright_blue",
    "bright_magenta",
    "dark_orange",
    "orchid",
    "spring_green2",
    "deep_sky_blue1",
)
STYLES = {
    "time": "grey50",
    "self": "bold",
    "system": "grey62",
    "error": "bold red",
    "mention": "bold black on yellow",
    "action": "italic",
}


def want_color(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> bool:
    """Colour unless ``NO_COLOR`` is set (non-empty), ``TERM=dumb``, or ``color = false``."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR") or env.get("TERM", "") == "dumb":
        return False
    return bool(config.get("color", True))


def user_color(user: str, overrides: Mapping[str, str] | None = None) -> str:
    if overrides and user in overrides:
        return overrides[user]
    return PALETTE[zlib.crc32(user.encode()) % len(PALETTE)]


def mentions(text: str, me: str) -> bool:
    """True when ``text`` names ``me`` as a word (``alice``, ``@alice``, ``alice:``)."""
    if not me:
        return False
    return re.search(rf"(?<![\w-]){re.escape(me)}(?![\w-])", text, re.IGNORECASE) is not None


class Renderer:
    """Renders events for one user (``me``) to strings with or without ANSI colour."""

    def __init__(
        self,
        *,
        me: str = "",
        color: bool = True,
        colors: Mapping[str, str] | None = None,
        timestamp: str = "%H:%M:%S",
    ) -> None:
        self.me = me
        self.color = color
        self.colors = dict(colors or {})
        self.styles = {**STYLES, **{k: v for k, v in self.colors.items() if k in STYLES}}
        self.timestamp = timestamp
        self.console = Console(
            file=io.StringIO(),
            force_terminal=color,
            color_system="256" if color else None,
            no_color=not color,
            highlight=False,
            markup=False,
            emoji=False,
            width=10_000,
        )

    def _render(self, text: Text) -> str:
        self.console.file = io.StringIO()
        self.console.print(text, end="", soft_wrap=True)
        out = self.console.file.getvalue()
        assert isinstance(out, str)
        return out

    def _clock(self, ts: Any) -> Text:
        try:
            stamp = time.strftime(self.timestamp, time.localtime(float(ts)))
        except (TypeError, ValueError, OverflowError):
            stamp = "--:--:--"
        line = Text()
        line.append(stamp + " ", style=self.styles["time"])
        return line

    def message(self, message: Message) -> tuple[str, bool]:
        """The line for a message and whether it mentions ``me``."""
        user = multi_line(message.user)
        body = multi_line(message.text)
        own = user == self.me
        mention = not own and mentions(body, self.me)
        name_style = self.styles["self"] if own else user_color(user, self.colors)
        line = self._clock(message.ts)
        if message.kind == "action":
            head = f"* {user} "
            line.append("* ", style=name_style)
            line.append(user, style=name_style)
            line.append(" ")
            line.append(self._indent(body, len(head)), style=self.styles["action"])
        else:
            head = f"{user}: "
            line.append(user, style=name_style)
            line.append(": ")
            line.append(self._indent(body, len(head)))
        if mention:
            line.stylize(self.styles["mention"], 0, len(line))
        return self._render(line), mention

    def _indent(self, body: str, width: int) -> str:
        return body.replace("\n", "\n" + " " * (len(time.strftime(self.timestamp)) + 1 + width))

    def system(self, text: str, *, ts: float | None = None, error: bool = False) -> str:
        line = self._clock(time.time() if ts is None else ts)
        style = self.styles["error" if error else "system"]
        line.append("-!- ", style=style)
        line.append(multi_line(text), style=style)
        return self._render(line)
