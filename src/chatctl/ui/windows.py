"""The list of windows of ``chatctl join ROOM [ROOM…]``: which one is shown, the one shown
before it (where ``/part`` and a failed ``/join`` go back to), their numbers (Alt-1…9,
``/window N``), and what the status line and the terminal's title say about them."""

from __future__ import annotations

from chatctl.ui.readmarks import Mark
from chatctl.ui.toolbar import Activity
from chatctl.ui.window import Window


class WindowList:
    def __init__(self) -> None:
        self.all: list[Window] = []
        #: the window shown (set by :meth:`select`)
        self.current: Window | None = None
        #: the window shown before it
        self.previous: Window | None = None

    def __len__(self) -> int:
        return len(self.all)

    def add(self, window: Window) -> None:
        self.all.append(window)

    def shown(self) -> Window:
        assert self.current is not None, "no window shown yet"
        return self.current

    def number(self, window: Window) -> int:
        """The window's number, from 1."""
        return self.all.index(window) + 1

    def find(self, room: str) -> Window | None:
        return next((w for w in self.all if w.room == room), None)

    def step(self, delta: int) -> Window:
        """The next (``delta`` 1) or previous (-1) window, round the ends."""
        index = self.all.index(self.shown())
        return self.all[(index + delta) % len(self.all)]

    def select(self, window: Window) -> bool:
        """Show ``window`` (hiding the one shown); False when it already was."""
        current = self.current
        if window is current and window.visible:
            return False
        if current is not None:
            if current in self.all:
                self.previous = current
            current.hide()
        self.current = window
        window.show()
        return True

    def replace(self, old: Window, new: Window) -> None:
        """``new`` (added last) takes ``old``'s place and number."""
        self.all.remove(new)
        self.all[self.all.index(old)] = new
        if self.previous is old:
            self.previous = None
        if self.current is old:
            old.hide()
            self.current = None

    def remove(self, window: Window) -> Window | None:
        """Take ``window`` out; when it was shown, return the one to show instead (the one
        shown before it, else its left neighbour)."""
        index = self.all.index(window)
        self.all.remove(window)
        back = self.previous if self.previous in self.all else None
        if self.previous is window:
            self.previous = None
        if window is self.current and self.all:
            return back or self.all[max(0, index - 1)]
        return None

    # ------------------------------------------------------------------ what is said of them

    def activity(self) -> list[Activity]:
        """The other windows with something unread, for the activity bar."""
        return [
            Activity(i, w.room, w.unread, w.view.status.mentions)
            for i, w in enumerate(self.all, 1)
            if w is not self.current and (w.unread or w.view.status.mentions)
        ]

    def title(self) -> str:
        """The terminal's title: the room shown and the unread mentions of every window."""
        mentions = sum(w.view.status.mentions for w in self.all)
        room = self.shown().room
        return f"({mentions}) {room} - chatctl" if mentions else f"{room} - chatctl"

    def listing(self) -> list[str]:
        """``/window``: one line per window."""
        lines = []
        for i, w in enumerate(self.all, 1):
            shown = " (shown)" if w is self.current else ""
            unread = f", {w.unread} unread" if w.unread else ""
            n = w.view.status.mentions
            at = f", {n} mention{'s' if n != 1 else ''}" if n else ""
            lines.append(f"{i}: {w.room}{shown}{unread}{at}")
        return lines

    def marks(self) -> dict[str, Mark]:
        """The read mark of every window where something was seen."""
        return {w.room: w.seen for w in self.all if w.seen is not None}
