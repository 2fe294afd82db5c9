"""Key bindings of the input line, built in one factory (as pgcli does).

====================  ========================================================
Enter                 send the line (a multi-line *paste* is asked about first)
Alt-Enter             insert a newline (compose a multi-line message; not asked about)
Tab                   complete a /command, its argument, or a user name
Up / Down             walk the input history (kept across runs)
Ctrl-C                clear the input line (as shells, psql and pgcli; it does not quit)
Ctrl-D                quit, on an empty line (prompt-toolkit's own binding)
Ctrl-L                clear the screen
Ctrl-Z                suspend (prompt-toolkit's, with ``enable_suspend``)
Alt-1 to Alt-9        show window 1 to 9 (``chatctl join general ops dev``)
Alt-Left / Alt-Right  show the previous / next window (Ctrl-P / Ctrl-N too)
PageUp                load older messages of the room from the server
====================  ========================================================
"""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit.filters import has_completions
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys

#: the keys above, for ``/help`` (one line)
KEYS_HELP = (
    "keys: Alt-Enter newline, Tab complete, Up/Down history, Ctrl-C clear the line, "
    "Ctrl-L clear the screen, Ctrl-D quit, Alt-1..9 window N, Alt-Left/Right or Ctrl-P/N "
    "previous/next window, PageUp older messages"
)


def create_key_bindings(
    *,
    on_paste: Callable[[str], None],
    on_window: Callable[[int | str], None] = lambda _: None,
    on_page_up: Callable[[], None] = lambda: None,
) -> KeyBindings:
    """The bindings of the input line; ``on_paste(text)`` is told of each bracketed paste
    (so that only a pasted newline makes Enter ask before sending); ``on_window(N)`` shows
    window N (from 1), ``on_window("next")`` / ``("prev")`` the next or previous one;
    ``on_page_up()`` loads older messages."""
    kb = KeyBindings()

    for n in range(1, 10):

        @kb.add("escape", str(n))
        def _window(event: KeyPressEvent, n: int = n) -> None:
            on_window(n)

    @kb.add("escape", "right")
    @kb.add("c-n", filter=~has_completions)
    def _next(event: KeyPressEvent) -> None:
        on_window("next")

    @kb.add("escape", "left")
    @kb.add("c-p", filter=~has_completions)
    def _prev(event: KeyPressEvent) -> None:
        on_window("prev")

    @kb.add("pageup")
    def _older(event: KeyPressEvent) -> None:
        on_page_up()

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
