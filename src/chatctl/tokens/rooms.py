"""Room patterns in tokens: whether a ``rooms`` glob can match any valid room name.

``chatctl token create`` refuses a pattern that matches no room (``''``, ``[``, ``../x``):
such a token could join nothing.
"""

from __future__ import annotations

import fnmatch
import string

#: what a room name is made of (docs/protocol.md: 1-64 of these, the first a letter or digit)
ROOM_FIRST = frozenset(string.ascii_letters + string.digits)
ROOM_CHARS = ROOM_FIRST | frozenset("._-")
MAX_ROOM = 64
ROOM_RULE = "room names are 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"


def room_pattern_problem(pattern: str) -> str | None:
    """Why the glob ``pattern`` matches no valid room name, or None when it matches one.

    The pattern is read as the server matches a token's rooms (``fnmatch.fnmatchcase``:
    ``*``, ``?``, ``[...]``, an unclosed ``[`` a plain character), as a list of steps, each
    the room characters it can match at one position (``*``: any run of them); then the
    positions a name can reach after each step are followed, from 0 to 64."""
    steps: list[frozenset[str] | None] = []  # None: '*'
    i, n = 0, len(pattern)
    while i < n:
        char, i = pattern[i], i + 1
        if char == "*":
            steps.append(None)
        elif char == "?":
            steps.append(ROOM_CHARS)
        elif char == "[":
            j = i + (i < n and pattern[i] == "!")
            j += j < n and pattern[j] == "]"
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: fnmatch reads '[' as itself
                steps.append(frozenset("["))
            else:
                bracket = pattern[i - 1 : j + 1]
                steps.append(frozenset(c for c in ROOM_CHARS if fnmatch.fnmatchcase(c, bracket)))
                i = j + 1
        else:
            steps.append(frozenset(char))
    reach = {0}  # lengths of the room names the steps so far can match
    for step in steps:
        if step is None:
            reach = set(range(min(reach), MAX_ROOM + 1))
        else:
            reach = {
                k + 1 for k in reach if k < MAX_ROOM and step & (ROOM_CHARS if k else ROOM_FIRST)
            }
        if not reach:
            break
    if reach - {0}:
        return None
    return f"--room {pattern!r} matches no room ({ROOM_RULE})"
