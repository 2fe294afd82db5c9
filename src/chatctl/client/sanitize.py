"""The one sanitiser for text from peers and servers on its way to a terminal.

Escape sequences are removed whole, as a terminal would read them, not only their ESC byte
(which left ``[31mred[0m`` on the screen from a coloured log line):

- CSI: ``ESC [`` (or C1 ``0x9b``), parameter bytes, intermediate bytes, a final byte
  (``ESC[31m``, ``ESC[2J``, ``ESC[?1049h``);
- strings: OSC ``ESC ]`` (a window title, a hyperlink, the clipboard), DCS ``ESC P``, SOS
  ``ESC X``, PM ``ESC ^``, APC ``ESC _`` (or their C1 forms), up to BEL or ST (``ESC \\``,
  ``0x9c``), or to the end of the text when not terminated;
- any other ``ESC`` sequence: intermediate bytes and a final byte (``ESC c``, ``ESC (0``).

Then what is left is decided by Unicode category, the same for every client: C0/C1 control
characters, format characters such as the bidi overrides and isolates (U+202A-U+202E,
U+2066-U+2069) and zero-width characters (U+200B-U+200F, U+FEFF) that let a peer reorder or
hide text, lone surrogates, and the line/paragraph separators U+2028/U+2029 are dropped. The
two callers differ only in what a newline and a tab become:

- :func:`one_line` (``chatctl join`` for scripts, notices on stderr): shown as ``\\n`` and
  ``\\t``, so one message is always one line;
- :func:`multi_line` (the interactive client): a newline is kept (the renderer indents the
  continuation), a tab becomes four spaces.

With ``sgr=True`` (``chatctl join --ansi``) the SGR sequences of colours, bold and underline
are kept, rebuilt from the parameters :func:`safe_sgr` accepts (everything else in them, and
every other sequence, is still removed), and a reset ends the text so that nothing bleeds
into what follows.
"""

from __future__ import annotations

import re
import unicodedata

#: Categories never written to a terminal: control, format, surrogate, and the line and
#: paragraph separators. (Printable text, spaces and unassigned code points are kept.)
REMOVED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

#: One escape sequence, whole (see the module docstring); group 1: a CSI's parameters,
#: group 2: its intermediate and final bytes.
SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)([0-?]*)([ -/]*[@-~]?)"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
#: Where a sequence may start: ESC and the C1 introducers.
INTRODUCERS = re.compile(r"[\x1b\x90\x98\x9b\x9d\x9e\x9f]")
RESET = "\x1b[0m"

#: SGR parameters kept with ``sgr=True``: reset, bold, underline and their ends, the 8 and
#: 16 colours and the default colours (38 and 48 with ``5;N`` or ``2;R;G;B`` too).
SGR_KEPT = frozenset(
    {0, 1, 4, 22, 24, 39, 49, *range(30, 38), *range(40, 48), *range(90, 98), *range(100, 108)}
)


def safe_sgr(params: str) -> str | None:
    """The SGR parameters ``params`` (of ``ESC [ params m``) reduced to colours, bold and
    underline, as a sequence; None when nothing is left."""
    if not params:
        return RESET
    if not re.fullmatch(r"[0-9;]*", params):  # private (?, <, =, >) or colon forms
        return None
    codes = [int(p) if p else 0 for p in params.split(";")]
    kept: list[int] = []
    i = 0
    while i < len(codes):
        code = codes[i]
        if code in (38, 48):
            size = {5: 2, 2: 4}.get(codes[i + 1] if i + 1 < len(codes) else -1)
            args = codes[i + 1 : i + 1 + size] if size else []
            if size and len(args) == size and all(a <= 255 for a in args[1:]):
                kept += [code, *args]
                i += 1 + size
                continue
            break  # malformed: its arguments cannot be told from codes
        if code in SGR_KEPT:
            kept.append(code)
        i += 1
    return f"\x1b[{';'.join(map(str, kept))}m" if kept else None


def _chars(text: str, newline: str, tab: str) -> str:
    out = []
    for ch in text:
        if ch == "\n":
            out.append(newline)
        elif ch == "\t":
            out.append(tab)
        elif ch.isprintable() or unicodedata.category(ch) not in REMOVED:
            out.append(ch)
    return "".join(out)


def _strip(text: str, newline: str, tab: str, sgr: bool) -> str:
    if INTRODUCERS.search(text) is None:
        return _chars(text, newline, tab)
    out: list[str] = []
    pos = 0
    coloured = False  # a colour is on: a reset must end the text
    for match in SEQUENCE.finditer(text):
        out.append(_chars(text[pos : match.start()], newline, tab))
        pos = match.end()
        if sgr and match.group(2) == "m":
            kept = safe_sgr(match.group(1))
            if kept is not None:
                out.append(kept)
                coloured = kept != RESET
    out.append(_chars(text[pos:], newline, tab))
    if coloured:
        out.append(RESET)
    return "".join(out)


def one_line(text: str, *, sgr: bool = False) -> str:
    """``text`` made safe for one terminal line: escape sequences and removed characters
    dropped (colours kept with ``sgr``), newlines and tabs shown as ``\\n`` and ``\\t``."""
    if text.isprintable():  # the common case, checked in C
        return text
    return _strip(text, "\\n", "\\t", sgr)


def multi_line(text: str, *, sgr: bool = False) -> str:
    """``text`` made safe for a terminal, newlines kept and tabs as four spaces (colours
    kept with ``sgr``)."""
    if text.isprintable():
        return text
    return _strip(text, "\n", "    ", sgr)
