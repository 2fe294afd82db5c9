"""The one sanitiser: escape sequences removed whole, colours kept only when asked."""

from __future__ import annotations

import pytest

from chatctl.client.sanitize import multi_line, one_line, safe_sgr

WHOLE = [
    ("\x1b[31mANSI red\x1b[0m", "ANSI red"),  # SGR
    ("a\x1b[2Jb\x1b[?1049hc\x1b[10;20Hd", "abcd"),  # clear, alternate screen, cursor
    ("\x1b]0;a title\x07text", "text"),  # OSC ended by BEL
    ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8, ST
    ("\x1b]52;c;Y2xpcGJvYXJk\x07x", "x"),  # the clipboard
    ("\x1bP+q544e\x1b\\y", "y"),  # DCS
    ("\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\z", "z"),
    ("\x1bc\x1b(0\x1b7k\x1b8", "k"),  # reset, charset, save/restore cursor
    ("\x9b31mc1\x9d0;t\x9c!", "c1!"),  # C1 forms
    ("tail\x1b", "tail"),  # a lone ESC
    ("x\x1b]0;never ended", "x"),  # an unterminated string hides the rest
]


@pytest.mark.parametrize(("text", "shown"), WHOLE)
def test_escape_sequences_are_removed_whole(text: str, shown: str) -> None:
    assert one_line(text) == shown
    assert multi_line(text) == shown
    assert one_line(text, sgr=True).replace("\x1b[31m", "").replace("\x1b[0m", "") == shown


def test_sgr_keeps_colours_bold_and_underline_only() -> None:
    assert one_line("\x1b[1;31mred\x1b[0m plain", sgr=True) == "\x1b[1;31mred\x1b[0m plain"
    # blink (5), reverse (7) and conceal (8) are dropped from the sequence, the rest kept
    assert one_line("\x1b[5;7;8;4;32mx", sgr=True) == "\x1b[4;32mx\x1b[0m"
    assert one_line("\x1b[8mhidden", sgr=True) == "hidden"
    # 256 colours and RGB; a colour left on is reset at the end
    assert one_line("\x1b[38;5;208mo", sgr=True) == "\x1b[38;5;208mo\x1b[0m"
    assert one_line("\x1b[48;2;1;2;3mb", sgr=True) == "\x1b[48;2;1;2;3mb\x1b[0m"
    # everything else goes, with or without sgr
    assert one_line("\x1b[31mr\x1b]0;t\x07\x1b[2Jx\ny", sgr=True) == "\x1b[31mrx\\ny\x1b[0m"
    assert multi_line("a\x1b[31m\tb", sgr=True) == "a\x1b[31m    b\x1b[0m"


@pytest.mark.parametrize(
    ("params", "kept"),
    [
        ("", "\x1b[0m"),
        ("0", "\x1b[0m"),
        ("1;4;22;24;39;49", "\x1b[1;4;22;24;39;49m"),
        ("97;107", "\x1b[97;107m"),
        ("38;5;300", None),  # out of range: the rest cannot be read
        ("38;2;1;2", None),
        ("?25", None),
        ("38:5:1", None),
        ("5;31", "\x1b[31m"),
    ],
)
def test_safe_sgr(params: str, kept: str | None) -> None:
    assert safe_sgr(params) == kept
