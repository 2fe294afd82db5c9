"""Older messages from the server, in a window (PageUp, ``/history N``): the ``history``
request (docs/protocol.md) for the messages before the oldest one the window holds, and its
answer shown as a block between two lines and kept first in the window's lines, so that they
are in their place when the window is drawn again."""

from __future__ import annotations

from typing import Protocol

from chatctl.protocol import DEFAULT_HISTORY_PAGE, HistoryPage, HistoryRequest, Message
from chatctl.ui.render import Renderer


class Window(Protocol):
    """What paging back uses of a window (:class:`chatctl.ui.window.Window`)."""

    #: the oldest message id the window holds
    oldest: int | None

    def insert_older(self, lines: list[str], messages: list[Message] | None = None) -> None: ...


class Older:
    """One window's paging back: where the next page ends, and whether there is one."""

    def __init__(self) -> None:
        #: a request is on its way (PageUp held down asks once)
        self.pending = False
        #: the server keeps no older message than the oldest shown
        self.exhausted = False

    def request(self, window: Window, count: int | None) -> HistoryRequest | None:
        """The next page's request, or None when one is on its way or none is left."""
        if self.pending or self.exhausted:
            return None
        self.pending = True
        return HistoryRequest(before=window.oldest, limit=count or DEFAULT_HISTORY_PAGE)

    def answer(self, window: Window, page: HistoryPage, renderer: Renderer) -> list[str]:
        """Take a page into ``window``; return the lines to print now (the page between two
        separator lines, or a note that nothing older is kept)."""
        self.pending = False
        before = window.oldest
        messages = [m for m in page.messages if before is None or m.id < before]
        self.exhausted = not page.more or not messages
        if not messages:
            return [renderer.system(f"no older messages of {page.room} kept by the server")]
        lines = [renderer.message(m)[0] for m in messages]
        window.insert_older(lines, messages)
        window.oldest = messages[0].id
        first, last = messages[0].id, messages[-1].id
        more = "PageUp for more" if page.more else "the oldest kept by the server"
        head = renderer.marker(f"── {len(lines)} older messages (#{first}-#{last}) ──")
        tail = renderer.marker(f"── end of the older messages ({more}) ──")
        return [head, *lines, tail]
