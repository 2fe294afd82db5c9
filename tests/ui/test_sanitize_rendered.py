"""What a peer sends cannot reorder, hide or restyle the interactive client's lines."""

from __future__ import annotations

import re

import pytest

from chatctl.client.join import plain_line
from chatctl.errors import ConfigError
from chatctl.protocol import Message
from chatctl.ui.config import JoinConfig
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
    # without the renderer's own colours (the escape sequence is removed whole)
    shown = re.sub(r"\x1b\[[0-9;]*m", "", line)
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


def test_ansi_shows_a_message_s_colours_and_nothing_else() -> None:
    """``--ansi`` / ``ansi = true``: the colour a coloured log line carries is shown, read
    by rich from the SGR sequence the sanitiser kept; other sequences are still removed."""
    text = "\x1b[31mANSI red\x1b[0m \x1b]0;pwned\x07\x1b[2Jdone"
    msg = Message(1, "ops", "bob", text, 0.0)
    coloured, _ = Renderer(me="alice", ansi=True).message(msg)
    assert "\x1b[31mANSI red" in coloured
    assert "pwned" not in coloured and "\x1b[2J" not in coloured and "\x1b]" not in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).endswith("bob: ANSI red done")
    plain, _ = Renderer(me="alice").message(msg)
    assert "\x1b[31mANSI" not in plain
    assert re.sub(r"\x1b\[[0-9;]*m", "", plain).endswith("bob: ANSI red done")
    mono, _ = Renderer(me="alice", color=False, ansi=True).message(msg)  # NO_COLOR wins
    assert "\x1b[31m" not in mono


def test_ansi_from_config_toml() -> None:
    assert JoinConfig.from_config({"join": {"ansi": True}}).ansi is True
    assert JoinConfig.from_config({}).ansi is False
    with pytest.raises(ConfigError, match=r"\[join\] ansi must be a bool"):
        JoinConfig.from_config({"join": {"ansi": "yes"}})
