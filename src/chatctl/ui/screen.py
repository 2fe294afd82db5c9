"""What the interactive client does to the terminal besides printing lines: clearing it,
drawing a window's own lines again after a switch, and the terminal's title (saved on the
terminal's title stack at the start and restored at the end, as vim and less do).

Clearing asks the terminal where the cursor is, and the answer must be read by
prompt-toolkit, not echoed by a tty in cooked mode between two prompts (``^[[1;1R``): from a
key binding (the prompt is running) it is done at once, from a command when the next prompt
runs (:meth:`Screen.pre_run`). The clear and the lines drawn after it go the lines' way
(:class:`~chatctl.ui.output.LineOutput`), in order; the shown window's lines written while
it waits to be drawn again are drawn by the redraw only (they are in its lines already).
"""

from __future__ import annotations

import asyncio

from prompt_toolkit.application import Application

from chatctl.ui.output import LineOutput
from chatctl.ui.render import Renderer
from chatctl.ui.window import NEW_MESSAGES
from chatctl.ui.windows import WindowList


class Screen:
    def __init__(
        self, *, output: LineOutput, windows: WindowList, renderer: Renderer, dumb: bool
    ) -> None:
        self.output = output
        self.windows = windows
        self.renderer = renderer
        self.dumb = dumb
        #: the prompt session's application (set once the session exists)
        self.app: Application[str] | None = None
        self._clear_pending = False
        self._redraw_pending = False
        self._title = ""

    def clear(self) -> None:
        """``/clear``: clear the screen when the next prompt runs."""
        self._clear_pending = True

    def redraw(self) -> None:
        """Draw the shown window's lines on a clear screen (now, from a key, or when the
        next prompt runs, from a command). A dumb terminal cannot clear: it is told which
        window this is, then what is new in it."""
        window = self.windows.shown()
        if self.dumb:
            number = self.windows.number(window)
            self.output.write(self.renderer.system(f"window {number}: {window.room}"))
            if window.marker is not None:
                self.output.write(self.renderer.marker(NEW_MESSAGES))
                for line in window.lines[window.marker :]:
                    self.output.write(line)
            return
        self._redraw_pending = True
        self.output.held = True  # a line written until then is drawn by the redraw only
        if self.output.prompting:
            self._clear_now()

    def pre_run(self) -> None:
        """The prompt's ``pre_run``: a clear or redraw asked for between two prompts."""
        if self._clear_pending or self._redraw_pending:
            # after the prompt has put the terminal in raw mode (pre_run comes before that)
            asyncio.get_running_loop().call_soon(self._clear_now)

    def _clear_now(self) -> None:
        if self.app is None:
            return
        self._clear_pending = False
        if self.dumb:
            self.app.renderer.clear()
        else:  # after the lines still on their way to the screen, not before them
            self.output.clear_screen()
        if self._redraw_pending:
            self._redraw_pending = False
            self.output.held = False
            rows = self.app.output.get_size().rows
            for line in self.windows.shown().screen_lines(rows):
                self.output.write(line)
        self.refresh()

    def save_title(self) -> None:
        """Push the terminal's title (xterm's title stack), restored by :meth:`restore_title`."""
        if self.app is not None and not self.dumb:
            self.app.output.write_raw("\x1b[22;0t")
            self.app.output.flush()

    def restore_title(self) -> None:
        if self.app is not None and not self.dumb and self._title:
            self.app.output.write_raw("\x1b[23;0t")
            self.app.output.flush()

    def refresh(self) -> None:
        """Redraw the prompt and the status line; update the title."""
        if self.app is None:
            return
        self.app.invalidate()
        title = self.windows.title()
        if not self.dumb and title != self._title:
            self._title = title
            self.app.output.set_title(title)
            self.app.output.flush()
