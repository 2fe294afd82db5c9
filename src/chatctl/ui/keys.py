"""Key bindings of the input line, built in one factory (as pgcli does).

==============  ==============================================================
Enter           send the line (a multi-line *paste* is asked about first)
Alt-Enter       insert a newline (compose a multi-line message; not asked about)
Tab             complete a /command, its argument, or a user name
Up / Down       walk the input history (kept across runs)
Ctrl-C          clear the input line (as shells, psql and pgcli; it does not quit)
Ctrl-D          quit, on an empty line (prompt-toolkit's own binding)
Ctrl-L          clear the screen
Ctrl-Z          suspend (prompt-toolkit's, with ``enable_suspend``)
==============  ==============================================================
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys

#: the keys above, for ``/help`` (one line)
KEYS_HELP = (
    "keys: Alt-Enter newline, Tab complete, Up/Down history, Ctrl-C clear the line, "
    "Ctrl-L clear the screen, Ctrl-D quit"
)


def create_key_bindings(*, on_paste: Callable[[str], None]) -> KeyBindings:
    """The bindings of the input line; ``on_paste(text)`` is told of each bracketed paste
    (so that only a pasted newline makes Enter ask before sending)."""
    kb = KeyBindings()

    @kb.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @kb.add("c-l")
    def _clear(event: KeyPressEvent) -> None:
        event.app.renderer.clear()

    @kb.add("c-c")
    def _clear_line(event: KeyPressEvent) -> None:
        event.current_buffer.reset()

    @kb.add(Keys.BracketedPaste)
    def _paste(event: KeyPressEvent) -> None:
        # as prompt-toolkit's own binding: terminals send \r or \r\n for a newline
        text = event.data.replace("\r\n", "\n").replace("\r", "\n")
        on_paste(text)
        event.current_buffer.insert_text(text)

    return kb
