"""``chatctl join`` in a real pty whose output is replayed into a terminal emulator (pyte), so
tests assert on what a user sees: the rows of the screen, their attributes, the cursor.

A reader thread feeds the emulator as soon as output arrives, and the emulated terminal
answers cursor-position requests (``ESC [ 6 n``), as xterm does, so prompt-toolkit runs as on a
real terminal (no ``PROMPT_TOOLKIT_NO_CPR``). Each request is recorded with whether it was
written while no prompt was running: between the end of one prompt (bracketed paste turned
off) and the start of the next (turned on again), the only request may be the new prompt's
own, made once it has put the tty in raw mode; any other is answered by a real terminal
within microseconds, while the tty is cooked, and the reply is echoed onto the screen
(``^[[1;1R``). Waiting is
on the screen's content, with a deadline, never on a fixed sleep.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable

import pexpect
import pyte

from support.client_helpers import client_env

UP = "\x1b[A"
CTRL_C, CTRL_D, ALT_ENTER = "\x03", "\x04", "\x1b\r"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


#: bracketed paste on (a prompt starts) and off (it ends), and the cursor-position request
_PROMPT_MARKERS = re.compile(r"\x1b\[\?2004[hl]|\x1b\[6n")


class Term:
    """A terminal of ``cols`` x ``rows`` running ``chatctl join ROOM ARGS`` as ``user``."""

    def __init__(
        self,
        port: int,
        room: str,
        *args: str,
        user: str = "alice",
        cols: int = 100,
        rows: int = 30,
        color: bool = True,
        wait: str | None = "joined",
        **env: str,
    ) -> None:
        full_env = client_env(port, user, **{"TERM": "xterm-256color", **env})
        full_env.pop("NO_COLOR", None)
        if not color:
            full_env["NO_COLOR"] = "1"
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.raw: list[str] = []
        #: for each cursor-position request: was it written while no prompt was running?
        self.cpr_outside_prompt: list[bool] = []
        self._in_prompt = False
        self._between_prompts = 0
        self.lock = threading.Lock()
        self.eof = threading.Event()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "chatctl", "join", room, *args],
            env=full_env,
            encoding="utf-8",
            timeout=15,
            dimensions=(rows, cols),
        )
        self.child.logfile_read = self
        self.screen.write_process_input = self.child.send  # type: ignore[method-assign]
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if wait is not None:
            self.wait_for(wait)

    def _read(self) -> None:
        while True:
            try:
                self.child.read_nonblocking(65536, timeout=0.05)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                self.eof.set()
                return

    # the child's output, as pexpect's logfile_read (called in the reader thread)
    def write(self, data: str) -> None:
        for marker in _PROMPT_MARKERS.findall(data):
            if marker == "\x1b[6n":
                self._between_prompts += not self._in_prompt
                self.cpr_outside_prompt.append(self._between_prompts > 1)
            else:
                self._in_prompt = marker.endswith("h")
                self._between_prompts = 0
        with self.lock:
            self.raw.append(data)
            self.stream.feed(data)

    def flush(self) -> None:
        pass

    def output(self) -> str:
        with self.lock:
            return "".join(self.raw)

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def resize(self, rows: int, cols: int) -> None:
        """Resize the terminal as xterm and VTE do (pyte's own resize cuts rows at the top
        and leaves the cursor where it was, off its line): a shrink drops rows below the
        cursor first, and rows above it only as far as needed to keep it on screen, the
        cursor moving up with its line. Then the pty is told (SIGWINCH)."""
        with self.lock:
            screen = self.screen
            if rows < screen.lines:
                above = max(0, screen.cursor.y - (rows - 1))
                if above:
                    y, x = screen.cursor.y, screen.cursor.x
                    screen.cursor_position(1, 1)
                    screen.delete_lines(above)
                    screen.cursor.y, screen.cursor.x = y - above, x
                for y in range(rows, screen.lines):
                    screen.buffer.pop(y, None)
                screen.lines = rows
                screen.set_margins()
            screen.resize(rows, cols)
        self.child.setwinsize(rows, cols)

    def rows(self) -> list[str]:
        with self.lock:
            return [row.rstrip() for row in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.rows())

    def wait_until(
        self, ready: Callable[[], bool], what: str = "the screen", timeout: float = 15
    ) -> None:
        """Wait until ``ready()`` holds, checking after each piece of output."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self.eof.is_set() and not ready():
                raise AssertionError(f"exited before {what}; screen:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{self.text()}")
            self.eof.wait(0.02)

    def wait_for(self, text: str, timeout: float = 15) -> None:
        self.wait_until(lambda: text in self.text(), repr(text), timeout)

    def bottom(self) -> str:
        """The last row: the status line."""
        return self.rows()[-1]

    def prompt_row(self) -> str:
        """The row holding the input line (the last row that starts with ``[``; "" while the
        prompt is being redrawn)."""
        rows = [r for r in self.rows() if r.startswith("[")]
        return rows[-1] if rows else ""

    def wait_prompt(self, expected: str) -> None:
        """Wait until the input line reads ``expected`` (the prompt and what is typed)."""
        self.wait_until(lambda: self.prompt_row() == expected, f"the input line {expected!r}")

    def find(self, text: str) -> list[int]:
        """Indexes of the rows that contain ``text``."""
        return [i for i, row in enumerate(self.rows()) if text in row]

    def exit_status(self, timeout: float = 15) -> int:
        if not self.eof.wait(timeout):
            raise AssertionError(f"still running after {timeout} s; screen:\n{self.text()}")
        self.reader.join()
        self.child.close()
        status = self.child.exitstatus
        assert status is not None, f"killed by signal {self.child.signalstatus}"
        return int(status)

    def quit(self) -> None:
        self.send(CTRL_D)
        assert self.exit_status() == 0, self.text()

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.reader.join(5)


def open_term(terms: list[Term], *args: object, **kwargs: object) -> Term:
    """A :class:`Term` added to ``terms`` (the ui tests' fixture), which closes it."""
    term = Term(*args, **kwargs)  # type: ignore[arg-type]
    terms.append(term)
    return term
