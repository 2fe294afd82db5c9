"""Key bindings of the input line, built in one factory (as pgcli does).

==============  ==============================================================
Enter           send the line (a multi-line paste is asked about first)
Alt-Enter       insert a newline (compose a multi-line message)
Tab             complete a /command or a user name
Up / Down       walk the input history (kept across runs)
Ctrl-L          clear the screen
Ctrl-D          quit (on an empty line)
Ctrl-C          quit
==============  ==============================================================
"""

from __future__ import annotations

from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent


def create_key_bindings() -> KeyBindings:
    kb = KeyBindings()

    @kb.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @kb.add("c-l")
    def _clear(event: KeyPressEvent) -> None:
        event.app.renderer.clear()

    @kb.add("c-c")
    def _quit(event: KeyPressEvent) -> None:
        event.app.exit(exception=EOFError, style="class:exiting")

    return kb
