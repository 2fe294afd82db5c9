"""The status line under the input (prompt-toolkit's bottom toolbar), as pgcli's
``pgtoolbar.py``: the room, the users in it, the connection and the unread mentions::

     ops · 3 users · connected
     ops · 3 users · reconnecting in 4 s (connection refused) · 2 queued · 1 mention
     ops · offline (the server is restarting) · 1 queued
     ops · parted (kicked from ops by alice: spam)
     ops · offline (token expired) · token expired: waiting for ~/.config/chatctl/token
     2:ops · 3 users · connected · act: 1:general 4, 3:dev 2 @1
     ops · 3 users · connected · notify failed: notify-send: exit status 1

With several windows (``chatctl join general ops dev``) the room has its window's number, and
the activity bar lists the other windows with something unread: the number of messages, and
``@N`` mentions (in the mentions' style).

Connection attempts are shown here instead of scrolling by. :class:`Status` is the state the
UI keeps up to date from the client's events; :func:`create_toolbar` renders it (styles in
:mod:`chatctl.ui.style`).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prompt_toolkit.formatted_text import StyleAndTextTuples


class Link(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    #: waiting before the next attempt (``retry_at``)
    RECONNECTING = "reconnecting"
    #: the connection ended; the next attempt starts at once
    OFFLINE = "offline"
    #: a moderator removed the user (kicked, banned): no reconnecting
    PARTED = "parted"


@dataclass(frozen=True)
class Activity:
    """A hidden window with ``unread`` messages, ``mentions`` of them naming you."""

    window: int
    room: str
    unread: int
    mentions: int

    def label(self) -> str:
        mentions = f" @{self.mentions}" if self.mentions else ""
        return f"{self.window}:{self.room} {self.unread}{mentions}"


@dataclass
class Status:
    room: str
    users: int = 0
    link: Link = Link.CONNECTING
    #: why the last connection or attempt failed (shown until connected)
    reason: str = ""
    #: ``time.monotonic()`` of the next attempt, while reconnecting
    retry_at: float = 0.0
    #: messages sent but not acknowledged yet (they go out again after a reconnect)
    queued: int = 0
    #: messages naming you since you last sent a line
    mentions: int = 0
    #: token trouble (not renewed, or expired and waited for), until a renewal ends it
    token: str = ""
    #: the window's number (0: the only window, no number shown)
    window: int = 0
    #: the other windows with something unread
    activity: list[Activity] = field(default_factory=list)
    #: why the ``--notify-command`` failed (until a run succeeds)
    notify: str = ""

    def connection(self, now: float | None = None) -> str:
        """The connection in words: ``connected``, ``reconnecting in 4 s (refused)``..."""
        reason = f" ({self.reason})" if self.reason else ""
        if self.link is Link.RECONNECTING:
            now = time.monotonic() if now is None else now
            wait = max(0, math.ceil(self.retry_at - now))
            return f"reconnecting in {wait} s{reason}"
        if self.link is Link.CONNECTED:
            return "connected"
        return f"{self.link.value}{reason}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def toolbar_fragments(status: Status, now: float | None = None) -> StyleAndTextTuples:
    """The status line's styled fragments (classes ``toolbar.*``)."""
    sep: tuple[str, str] = ("class:toolbar.sep", " · ")
    number = f"{status.window}:" if status.window else ""
    out: StyleAndTextTuples = [("class:toolbar.room", f" {number}{status.room}")]
    if status.link is Link.CONNECTED:
        out += [sep, ("class:toolbar", _plural(status.users, "user"))]
    state = "class:toolbar.connected" if status.link is Link.CONNECTED else "class:toolbar.offline"
    out += [sep, (state, status.connection(now))]
    if status.token:
        out += [sep, ("class:toolbar.offline", status.token)]
    if status.queued and status.link is not Link.CONNECTED:
        out += [sep, ("class:toolbar.queued", f"{status.queued} queued")]
    if status.mentions:
        out += [sep, ("class:toolbar.mentions", _plural(status.mentions, "mention"))]
    if status.activity:
        out += [sep, ("class:toolbar", "act:")]
        first = True
        for act in status.activity:
            style = "class:toolbar.mentions" if act.mentions else "class:toolbar.activity"
            out += [("class:toolbar", " " if first else ", "), (style, act.label())]
            first = False
    if status.notify:
        out += [sep, ("class:toolbar.offline", f"notify failed: {status.notify}")]
    out.append(("class:toolbar", " "))
    return out


def create_toolbar(status: Callable[[], Status]) -> Callable[[], StyleAndTextTuples]:
    """The ``bottom_toolbar`` callable of the prompt session."""
    return lambda: toolbar_fragments(status())
