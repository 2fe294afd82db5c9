"""Turn chat events into terminal lines: rich ``Text`` rendered to ANSI strings.

The strings are printed through prompt-toolkit's ``patch_stdout(raw=True)`` so they appear
above the input line with their colours intact. Nothing from a peer reaches the terminal
unfiltered: :mod:`chatctl.client.sanitize` drops control characters (escape sequences
included), bidi controls and zero-width characters, as for ``chatctl join`` in scripts.

Line shapes (the markers keep them apart without colour too)::

    18:02:11 alice: hello bob            a message (name in a stable per-user colour)
    18:02:15 * alice waves               an action (/me)
    18:02:20 -!- bob joined ops          a system line (joins, leaves, reconnects, notices)
    18:02:31 bob: a long message wraps between words to the width of the terminal,
                  each continuation under the start of the text
    18:02:40 >> bob: alice, look             a mention, with TERM=dumb (else in colour/reverse)
    18:02:45 -!- alice muted bob for 10m: spam    a moderator's announcement (in its own colour)
    18:02:50 bob: (message deleted)          a deleted message (dimmed)

A message with a word longer than a row (a long URL) is not wrapped by the client: the
terminal wraps it softly, so that copying it from the screen gives it whole.

Three modes (:func:`color_mode`): ``color``; ``mono`` with ``NO_COLOR`` or ``color = false``
(no colour, but bold, italic and reverse: a mention is in reverse video, an error in bold);
``plain`` with ``TERM=dumb`` (no escape sequence at all).
"""

from __future__ import annotations

import io
import os
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from chatctl.client.sanitize import multi_line
from chatctl.client.shown import DELETED, MODERATION_MARK
from chatctl.protocol import Message
from chatctl.ui.notify import names

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
    "moderation": "bold magenta",
    "deleted": "grey50 italic",
}
#: without colour (``NO_COLOR``) only what must stand out keeps an emphasis
MONO_STYLES = {
    **dict.fromkeys(STYLES, "none"),
    "mention": "bold reverse",
    "error": "bold",
    "moderation": "bold",
    "deleted": "italic",
}
#: before a message that mentions you when nothing can stand out (``TERM=dumb``)
MENTION_MARK = ">> "
#: below this many columns for the text, lines are not wrapped by the client
MIN_WRAP = 20

ColorMode = Literal["color", "mono", "plain"]


def color_mode(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ColorMode:
    """``plain`` for ``TERM=dumb``; ``mono`` when ``NO_COLOR`` is set (non-empty) or
    ``color = false``; ``color`` otherwise."""
    env = os.environ if env is None else env
    if env.get("TERM", "") == "dumb":
        return "plain"
    if env.get("NO_COLOR") or not config.get("color", True):
        return "mono"
    return "color"


def want_color(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> bool:
    """Colour unless ``NO_COLOR`` is set (non-empty), ``TERM=dumb``, or ``color = false``."""
    return color_mode(config, env) == "color"


def user_color(user: str, overrides: Mapping[str, str] | None = None) -> str:
    if overrides and user in overrides:
        return overrides[user]
    return PALETTE[zlib.crc32(user.encode()) % len(PALETTE)]


def mentions(text: str, me: str, words: Iterable[str] = ()) -> bool:
    """True when ``text`` names ``me`` or one of the highlight ``words`` as a word, in any
    case (``alice``, ``@alice``, ``alice:``)."""
    return any(names(text, word) for word in (me, *words))


class Renderer:
    """Renders events for one user (``me``) to strings with or without ANSI colour.

    ``emphasis`` without ``color`` keeps bold, italic and reverse (``NO_COLOR``); neither
    writes no escape sequence. ``width()`` is the terminal's width, read for each line:
    messages wrap between words to it, with a hanging indent (None: no wrapping).
    """

    def __init__(
        self,
        *,
        me: str = "",
        color: bool = True,
        emphasis: bool = False,
        colors: Mapping[str, str] | None = None,
        timestamp: str = "%H:%M:%S",
        width: Callable[[], int] | None = None,
        ansi: bool = False,
        highlights: Sequence[str] = (),
    ) -> None:
        """``ansi``: show the colours, bold and underline a message carries as SGR escape
        sequences (:func:`~chatctl.client.sanitize.multi_line`'s ``sgr``), in colour mode;
        ``highlights``: words that make a message a mention as your name does (read at each
        message: the list may change)."""
        self.me = me
        self.highlights = highlights
        self.color = color
        self.ansi = ansi and color
        self.colors = dict(colors or {})
        base = STYLES if color else {**STYLES, **MONO_STYLES}
        self.styles = {**base, **{k: v for k, v in self.colors.items() if k in STYLES}}
        self.timestamp = timestamp
        self.width = width
        styled = color or emphasis
        #: no escape sequence at all (``TERM=dumb``): a mention is marked with ``>>``
        self.plain = not styled
        self.console = Console(
            file=io.StringIO(),
            force_terminal=styled,
            color_system=("256" if color else "standard") if styled else None,
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
        """The line for a message and whether it mentions ``me`` (or a highlight word)."""
        user = multi_line(message.user)
        raw = message.text
        body = multi_line(raw)
        own = user == self.me
        mention = not own and mentions(body, self.me, self.highlights)
        name_style = self.styles["self"] if own else user_color(user, self.colors)
        user = multi_line(message.sender)  # coloured as its user: a display name is no other
        head = self._clock(message.ts)
        if mention and self.plain:
            head.append(MENTION_MARK)
        if message.kind == "moderation":  # the server's line: who did what to whom
            style = self.styles["moderation"]
            head.append(f"{MODERATION_MARK} ", style=style)
            line = self._hang(
                head, Text(body, style=style), self.styles["mention"] if mention else ""
            )
            return self._render(line), mention
        if message.kind == "action":
            head.append("* ", style=name_style)
            head.append(user, style=name_style)
            head.append(" ")
            text = self._body(raw, body, self.styles["action"])
        else:
            head.append(user, style=name_style)
            head.append(": ")
            text = self._body(raw, body)
        if message.deleted:
            text = Text(DELETED, style=self.styles["deleted"])
        return self._render(self._hang(head, text, self.styles["mention"] if mention else "")), (
            mention
        )

    def pending(self, user: str, text: str) -> str:
        """A message typed while offline, kept in the outbox: shown as pending (the
        server's copy follows once it is sent)."""
        style = self.styles["system"]
        head = self._clock(time.time())
        head.append(f"{multi_line(user) or 'you'} (pending): ", style=style)
        return self._render(self._hang(head, Text(multi_line(text), style=style)))

    def marker(self, text: str) -> str:
        """A separator line (the read marker), centred-ish under the time column."""
        return self._render(Text(f"{text}", style=self.styles["time"]))

    def _body(self, raw: str, body: str, style: str = "") -> Text:
        """The text of a message: ``body`` (sanitised), or with ``ansi`` the colours ``raw``
        carries, read by rich from the SGR sequences the sanitiser kept."""
        if self.ansi and ("\x1b" in raw or "\x9b" in raw):
            return Text.from_ansi(multi_line(raw, sgr=True), style=style, end="")
        return Text(body, style=style)

    def system(self, text: str, *, ts: float | None = None, error: bool = False) -> str:
        style = self.styles["error" if error else "system"]
        head = self._clock(time.time() if ts is None else ts)
        head.append("-!- ", style=style)
        return self._render(self._hang(head, Text(multi_line(text), style=style)))

    def _hang(self, head: Text, body: Text, style: str = "") -> Text:
        """``head`` then ``body`` wrapped between words to the terminal's width, every
        continuation indented to where the body starts; ``style`` (a mention) replaces their
        own styles, one run per row, and leaves the indentation alone."""
        if style:
            head, body = Text(head.plain), Text(body.plain)
        indent = head.cell_len
        width = self.width() - 1 if self.width is not None else 0  # -1: no auto-margin wrap
        longest = max((len(w) for w in body.plain.split()), default=0)
        if width - indent >= MIN_WRAP and longest <= width - indent:
            lines = list(body.wrap(self.console, width - indent, overflow="fold"))
        else:
            lines = list(body.split("\n"))
        line = head.copy()
        row_start = 0
        for i, part in enumerate(lines):
            part.rstrip()
            if i:
                if style:
                    line.stylize(style, row_start, len(line))
                line.append("\n" + " " * indent)
                row_start = len(line)
            line.append_text(part)
        if style:
            line.stylize(style, row_start, len(line))
        return line
