"""The one sanitiser for text from peers and servers on its way to a terminal.

What is removed is decided by Unicode category, the same for every client: C0/C1 control
characters (escape sequences start with one), format characters such as the bidi overrides
and isolates (U+202A-U+202E, U+2066-U+2069) and zero-width characters (U+200B-U+200F, U+FEFF)
that let a peer reorder or hide text, lone surrogates, and the line/paragraph separators
U+2028/U+2029. The two callers differ only in what a newline and a tab become:

- :func:`one_line` (``chatctl join`` for scripts, notices on stderr): shown as ``\\n`` and
  ``\\t``, so one message is always one line;
- :func:`multi_line` (the interactive client): a newline is kept (the renderer indents the
  continuation), a tab becomes four spaces.
"""

from __future__ import annotations

import unicodedata

#: Categories never written to a terminal: control, format, surrogate, and the line and
#: paragraph separators. (Printable text, spaces and unassigned code points are kept.)
REMOVED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _strip(text: str, newline: str, tab: str) -> str:
    out = []
    for ch in text:
        if ch == "\n":
            out.append(newline)
        elif ch == "\t":
            out.append(tab)
        elif ch.isprintable() or unicodedata.category(ch) not in REMOVED:
            out.append(ch)
    return "".join(out)


def one_line(text: str) -> str:
    """``text`` made safe for one terminal line: removed characters dropped, newlines and
    tabs shown as ``\\n`` and ``\\t``."""
    if text.isprintable():  # the common case, checked in C
        return text
    return _strip(text, "\\n", "\\t")


def multi_line(text: str) -> str:
    """``text`` made safe for a terminal, newlines kept and tabs as four spaces."""
    if text.isprintable():
        return text
    return _strip(text, "\n", "    ")
