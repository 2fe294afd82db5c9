"""The protocol's limits and naming rules: rooms, user names, blank text, and the handshake's
query parameters (``since``, ``history``, ``epoch``). Plain functions, no I/O."""

from __future__ import annotations

import re
import unicodedata

PROTOCOL_VERSION = 1

#: Largest incoming WebSocket frame/message in bytes; over it the server closes with 1009.
MAX_FRAME_BYTES = 64 * 1024
#: Longest chat message text in characters; over it the sender gets a ``message_too_long`` error.
MAX_MESSAGE_CHARS = 8000
#: Longest client-chosen message id.
MAX_CLIENT_ID_CHARS = 64
#: Messages kept per room for history and resume, unless configured otherwise.
DEFAULT_HISTORY = 1000
#: History messages a welcome carries when the client asks for neither ``since`` nor ``history``.
DEFAULT_WELCOME_HISTORY = 20
#: Messages a ``history`` request returns when it asks for no ``limit``.
DEFAULT_HISTORY_PAGE = 50
#: Most messages one ``history`` answer carries; a larger ``limit`` is read as this.
MAX_HISTORY_PAGE = 200
#: Most users a welcome lists; ``user_count`` gives the total and ``who`` the full list. Without
#: a bound, a reconnect storm of a room of N users writes N welcomes of N names: O(N^2) bytes.
MAX_WELCOME_USERS = 100
#: Seconds during which a repeated (user, client_id) in a room returns the original ack.
DEFAULT_DEDUP_WINDOW = 600.0

#: The first character of the server's own rooms (a conversation's ``+dm+alice+bob``, a
#: user's inbox ``+inbox+bob``: protocol/direct.py): no client-supplied room name starts
#: with it, so none reaches them.
RESERVED_PREFIX = "+"

ROOM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ROOM_RULE = "1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"
USER_RULE = "1-64 characters, none of them whitespace, control, invisible or bidi formatting"
#: Unicode categories no user name may contain: control (Cc), format — zero-width and bidi
#: controls such as U+200B, U+200D, U+202E — (Cf), surrogate (Cs), private use (Co),
#: unassigned (Cn) and every separator (Zs, Zl, Zp). ``alice\u200b`` would look like ``alice``.
USER_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
#: Categories that draw nothing: a message made only of them is blank.
BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
#: Longest display name (a webhook's Slack ``username``) after cleaning.
MAX_DISPLAY_CHARS = 32
DISPLAY_RULE = (
    f"1-{MAX_DISPLAY_CHARS} characters; single spaces inside; no control, invisible or bidi "
    "formatting characters, no brackets ( ) [ ] < >"
)
#: Characters a display name may not hold besides the user name's: brackets would let it fake
#: the ``(via USER)`` every client shows after it.
DISPLAY_FORBIDDEN_CHARS = frozenset("()[]<>")
EPOCH_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Most digits a ``since`` may have (ids stay far below 10**19).
MAX_SINCE_DIGITS = 19


def valid_room(room: str) -> bool:
    """A room name a client may use (never one of the server's own: RESERVED_PREFIX)."""
    return not room.startswith(RESERVED_PREFIX) and ROOM_RE.fullmatch(room) is not None


def valid_user(user: str) -> bool:
    return user_problem(user) is None


def user_problem(user: str) -> str | None:
    """Why ``user`` is not a valid user name (one line, safe to log), or None if it is."""
    if not 0 < len(user) <= 64:
        return f"a user name has 1-64 characters, not {len(user)}"
    for char in user:
        if char.isspace() or unicodedata.category(char) in USER_FORBIDDEN_CATEGORIES:
            return f"{describe_char(char)} is not allowed in a user name"
    return None


def clean_display(value: object) -> str | None:
    """A display name made safe to show beside a message's user, or None when nothing of it
    is left: whitespace runs become one space, forbidden characters (:data:`DISPLAY_RULE`)
    are dropped, and it is cut to :data:`MAX_DISPLAY_CHARS`. Cleaning a clean name returns it."""
    if not isinstance(value, str):
        return None
    kept = "".join(
        " " if c.isspace() else c
        for c in value[: 8 * MAX_DISPLAY_CHARS]
        if c.isspace()
        or (
            c not in DISPLAY_FORBIDDEN_CHARS
            and unicodedata.category(c) not in USER_FORBIDDEN_CATEGORIES
        )
    )
    cleaned = " ".join(kept.split())[:MAX_DISPLAY_CHARS].rstrip()
    return cleaned or None


def describe_char(char: str) -> str:
    """``U+200B ZERO WIDTH SPACE``: a character named without printing it."""
    name = unicodedata.name(char, "") or unicodedata.category(char)
    return f"U+{ord(char):04X} {name}".rstrip()


def is_blank(text: str) -> bool:
    """True when ``text`` draws nothing: only whitespace, control and format characters
    (U+200B ZERO WIDTH SPACE alone is blank; emoji joined by U+200D ZERO WIDTH JOINER are not)."""
    return not any(
        not c.isspace() and unicodedata.category(c) not in BLANK_CATEGORIES for c in text
    )


def parse_since(value: str | None) -> int | None:
    """Parse the ``since`` query parameter: a non-negative integer message id."""
    if not value:
        return None
    if not _ascii_digits(value) or len(value) > MAX_SINCE_DIGITS:
        raise ValueError("since must be a non-negative integer message id (ASCII digits)")
    return int(value)


def parse_history(value: str | None, *, cap: int) -> int | None:
    """Parse the ``history`` query parameter: a message count, clipped to ``cap``."""
    if not value:
        return None
    if not _ascii_digits(value):
        raise ValueError("history must be a non-negative integer (ASCII digits)")
    digits = value.lstrip("0") or "0"
    return cap if len(digits) > 9 else min(int(digits), cap)


def parse_epoch(value: str | None) -> str | None:
    """Parse the ``epoch`` query parameter: the epoch a welcome carried."""
    if not value:
        return None
    if EPOCH_RE.fullmatch(value) is None:
        raise ValueError("epoch must be 1-64 characters from A-Z a-z 0-9 . _ -")
    return value


def _ascii_digits(value: str) -> bool:
    """``0``-``9`` only: ``str.isdigit`` and ``int`` also take ``²``, ``٣`` or ``1_000``."""
    return value.isascii() and value.isdigit()
