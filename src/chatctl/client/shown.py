"""How a message reads on one plain line, the same for ``chatctl join`` in a script and
``chatctl history``: ``user: text``, ``* user text`` for an action (``/me``), ``-!- text``
for a moderator's announcement (kicks, mutes, bans, deletions: docs/protocol.md,
"Moderation"), ``user: (message deleted)`` for a deleted message (a tombstone). The text is
made safe for a terminal (:func:`~chatctl.client.sanitize.one_line`)."""

from __future__ import annotations

from chatctl.client.sanitize import one_line
from chatctl.protocol import Message

#: what a deleted message (a tombstone) shows instead of its text
DELETED = "(message deleted)"
#: before a moderation announcement, as IRC clients mark the server's lines
MODERATION_MARK = "-!-"


def plain_body(message: Message, *, ansi: bool = False) -> str:
    """The line without its time: ``ansi`` keeps the colours a message's text carries."""
    user = one_line(message.sender)
    if message.kind == "moderation":
        return f"{MODERATION_MARK} {one_line(message.text)}"
    text = DELETED if message.deleted else one_line(message.text, sgr=ansi)
    if message.kind == "action":
        return f"* {user} {text}"
    return f"{user}: {text}"
