"""Where the interactive client's lines go: above the input line.

On a terminal, lines are written to ``sys.stdout``, which ``patch_stdout(raw=True)`` routes
above the prompt (redrawn intact under them). A dumb terminal (``TERM=dumb``) has no cursor
movement: prompt-toolkit's dumb prompt just echoes what is typed after the prompt, so a line
written then would land on the prompt line. There, while a prompt is running, the prompt's
line is ended first, and the prompt with the text typed so far is written again after the
line (once for a burst of lines).

On a terminal, ``patch_stdout`` hands the lines to a thread that writes them a moment later
(up to 0.2 s after its last write). Clearing the screen goes the same way
(:meth:`LineOutput.clear_screen`), so lines written before a clear land before it, not on the
cleared screen; and while the shown window is to be drawn again (:attr:`LineOutput.held`),
its new lines are not written at all: the redraw draws them, once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable


class LineOutput:
    def __init__(self, *, dumb: bool, prompt_line: Callable[[], str]) -> None:
        """``prompt_line()`` is the prompt followed by what is typed so far."""
        self.dumb = dumb
        self.prompt_line = prompt_line
        self.prompting = False
        self._prompt_shown = False
        #: the shown window is to be drawn again on a clear screen (by
        #: :class:`~chatctl.ui.screen.Screen`): its lines are not written meanwhile
        self.held = False

    def prompt_started(self) -> None:
        self.prompting = True
        self._prompt_shown = self.dumb  # the dumb prompt writes itself first

    def prompt_ended(self) -> None:
        self.prompting = False

    def write(self, line: str) -> None:
        if self.dumb and self.prompting:
            self._write_dumb(line)
            return
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def clear_screen(self) -> None:
        """Clear the screen and put the cursor home, after the lines written before."""
        sys.stdout.write("\x1b[2J\x1b[H")
        sys.stdout.flush()

    def bell(self) -> None:
        sys.stdout.write("\a")
        sys.stdout.flush()

    def _write_dumb(self, line: str) -> None:
        out = sys.__stdout__
        assert out is not None
        if self._prompt_shown:
            out.write("\n")
            self._prompt_shown = False
            asyncio.get_running_loop().call_soon(self._reprompt)
        out.write(line + "\n")
        out.flush()

    def _reprompt(self) -> None:
        out = sys.__stdout__
        if self.prompting and not self._prompt_shown and out is not None:
            out.write(self.prompt_line())
            out.flush()
            self._prompt_shown = True
