"""What a peer sends cannot reorder, hide or restyle the interactive client's lines."""

from __future__ import annotations

import re

import pytest

from chatctl.client.join import plain_line
from chatctl.protocol import Message
from chatctl.ui.render import Renderer

#: Bidi overrides/isolates, zero-width characters, a BOM, an escape sequence, a separator.
HOSTILE = ["\u202e", "\u2066", "\u2069", "\u200b", "\u200f", "\ufeff", "\x1b[2J", "\u2028"]


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize("color", [True, False])
def test_interactive_lines_drop_bidi_and_invisible_characters(bad: str, color: bool) -> None:
    r = Renderer(me="alice", color=color)
    msg = Message(1, "ops", f"bo{bad}b", f"pay {bad}evil.exe{bad} now", 0.0)
    line, _ = r.message(msg)
    assert bad not in line
    # without the renderer's own colours and what is left of the escape sequence (printable)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", line).replace("[2J", "")
    assert "bob: pay evil.exe now" in shown
    assert bad not in r.system(f"{bad}bob joined")


def test_script_and_interactive_clients_show_the_same_text() -> None:
    """One sanitiser: the script line and the interactive line carry the same characters."""
    text = "a\u202eb\u2066c\u200bd\x07e \u00a0f"
    msg = Message(1, "ops", "bob", text, 0.0)
    script = plain_line(msg)
    interactive, _ = Renderer(color=False).message(msg)
    assert script.endswith("bob: abcde \u00a0f")
    assert interactive.endswith("bob: abcde \u00a0f")
