"""One window per room, as in WeeChat and irssi: each keeps its own lines (shown again when
it is switched to), counts what arrived while it was hidden (the activity bar), and knows
where the user stopped reading (the "new messages" line, and the mark saved across runs by
:mod:`chatctl.ui.readmarks`).

A :class:`Window` is what its :class:`~chatctl.ui.view.RoomView` writes to: a line goes to
the window's buffer and, when the window is the one shown, to the screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chatctl.client.stream import RoomStream
from chatctl.protocol import Message
from chatctl.ui.older import Older
from chatctl.ui.output import LineOutput
from chatctl.ui.readmarks import Mark
from chatctl.ui.view import RoomView

#: Lines a window keeps (older ones are dropped; the server's history has them).
MAX_LINES = 5000
#: The read marker's text.
NEW_MESSAGES = "── new messages ──"


class Window:
    def __init__(
        self,
        room: str,
        *,
        screen: LineOutput,
        make_view: Callable[[Window], RoomView],
        make_stream: Callable[[], RoomStream],
        marker: Callable[[], str],
    ) -> None:
        """``make_view(window)`` builds the window's view (writing to the window);
        ``marker()`` renders the "new messages" line."""
        self.room = room
        self.screen = screen
        self.render_marker = marker
        self.lines: list[str] = []
        #: the message each line shows (None: a line of another kind), to show a deleted
        #: message as deleted (:meth:`delete_message`)
        self.line_messages: list[Message | None] = []
        #: draws the window again when it is shown (None: the terminal cannot, TERM=dumb)
        self.redraw: Callable[[], None] | None = None
        #: a moderator removed the user (kicked, banned): the window stays, offline for good
        self.parted: str | None = None
        self.visible = False
        #: where the "new messages" line is drawn (an index in :attr:`lines`), if anywhere
        self.marker: int | None = None
        #: the first line that arrived while the window was hidden
        self.unseen_from: int | None = None
        #: messages that arrived while the window was hidden
        self.unread = 0
        #: the last message shown to the user (saved as the room's read mark)
        self.seen: Mark | None = None
        #: the oldest message id the window holds (older ones: the history request)
        self.oldest: int | None = None
        #: paging back through the server's history
        self.older = Older()
        self.view = make_view(self)
        self.stream = make_stream()
        self.task: asyncio.Task[None] | None = None
        #: the first welcome arrived (a /join that fails before it leaves no window)
        self.opened = False

    # ------------------------------------------------------------------ what the view writes

    def write(self, line: str) -> None:
        self.lines.append(line)
        self.line_messages.append(None)
        if len(self.lines) > MAX_LINES:
            drop = len(self.lines) - MAX_LINES
            del self.lines[:drop]
            del self.line_messages[:drop]
            self.marker = _shift(self.marker, drop)
            self.unseen_from = _shift(self.unseen_from, drop)
        self._print(line)

    def _print(self, line: str) -> None:
        """Put a line of the window on the screen when it is shown, unless the window is
        about to be drawn again (the redraw draws the line from :attr:`lines`)."""
        if self.visible and not self.screen.held:
            self.screen.write(line)

    def bell(self) -> None:
        self.screen.bell()

    def fresh(self, message: Message, *, start: bool) -> None:
        """A message the user has not seen is about to be written: ``start`` when it comes
        from the history after the room's saved read mark (the first welcome)."""
        if self.visible:
            if start and self.marker is None:
                self.marker = len(self.lines)
                self._print(self.render_marker())
            return
        self.unread += 1
        if self.unseen_from is None:
            self.unseen_from = len(self.lines)

    def shown_message(self, message: Message) -> None:
        """A message was written (the last line): when the window is shown, it is seen."""
        if self.line_messages:
            self.line_messages[-1] = message
        if self.oldest is None or message.id < self.oldest:
            self.oldest = message.id
        if self.visible:
            self.seen = Mark(message.id, self.stream.client.epoch)

    # ------------------------------------------------------------------ showing

    def show(self) -> None:
        """The window becomes the one shown: what arrived meanwhile is under the marker,
        its mentions are read."""
        self.visible = True
        if self.unseen_from is not None:
            self.marker, self.unseen_from = self.unseen_from, None
        self.unread = 0
        self.view.status.mentions = 0
        last = self.stream.client.last_id
        if last is not None:
            self.seen = Mark(last, self.stream.client.epoch)

    def hide(self) -> None:
        self.visible = False

    def screen_lines(self, rows: int) -> list[str]:
        """The lines to draw when the window is shown on ``rows`` rows: the last screenful,
        and from a little before the "new messages" line if it is further up (the
        terminal's scrollback keeps those)."""
        start = max(0, len(self.lines) - rows)
        if self.marker is not None:
            start = max(0, min(start, self.marker - 3))
        out: list[str] = []
        for i in range(start, len(self.lines)):
            if i == self.marker:
                out.append(self.render_marker())
            out.append(self.lines[i])
        if self.marker is not None and self.marker >= len(self.lines):
            out.append(self.render_marker())
        return out

    def insert_older(self, lines: list[str], messages: list[Message] | None = None) -> None:
        """Older lines (history loaded from the server) go first in the buffer; ``messages``:
        the message of each line."""
        self.lines[:0] = lines
        self.line_messages[:0] = messages if messages is not None else [None] * len(lines)
        self.marker = _shift(self.marker, -len(lines))
        self.unseen_from = _shift(self.unseen_from, -len(lines))

    def own_last(self, me: str) -> int | None:
        """The id of ``me``'s last message the window holds, not deleted (``/delete``)."""
        for message in reversed(self.line_messages):
            if message is not None and message.user == me and message.kind != "moderation":
                return None if message.deleted else message.id
        return None

    def delete_message(self, message_id: int, render: Callable[[Message], str]) -> bool:
        """Message ``message_id`` was deleted: its line becomes ``render(tombstone)``, and
        the window is drawn again when it is shown (the terminal's scrollback above the
        screen cannot be edited: the announcement line says it there). False when the
        window does not hold it."""
        for i in range(len(self.lines) - 1, -1, -1):
            message = self.line_messages[i]
            if message is not None and message.id == message_id:
                if message.deleted or message.kind == "moderation":
                    return False
                dead = message.tombstone()
                self.lines[i], self.line_messages[i] = render(dead), dead
                if self.visible and self.redraw is not None:
                    self.redraw()
                return True
        return False


def _shift(index: int | None, drop: int) -> int | None:
    if index is None:
        return None
    index -= drop
    return index if index >= 0 else None
