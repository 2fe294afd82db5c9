"""Moderation on the client side without a server: the close codes 4003 and 4004 as
:class:`~chatctl.errors.Removed` (status 8, one line), and the plain lines of announcements
and deleted messages (``chatctl join`` in a script, ``chatctl history``)."""

from __future__ import annotations

import pytest

from chatctl.client.closing import describe_close, removed
from chatctl.client.history import text_line
from chatctl.client.join import plain_line
from chatctl.client.shown import plain_body
from chatctl.errors import Removed
from chatctl.protocol import CloseCode, Message
from chatctl.status import ExitStatus


@pytest.mark.parametrize(
    ("code", "reason", "line"),
    [
        (4003, "kicked by alice: spam", "kicked from ops by alice: spam"),
        (4003, "by alice: spam", "kicked from ops by alice: spam"),
        (4003, "spam", "kicked from ops: spam"),
        (4003, "", "kicked from ops"),
        (4004, "banned from ops by alice for 1h: flood", "banned from ops by alice for 1h: flood"),
        (4004, "until 2026-12-06 14:00 UTC", "banned from ops until 2026-12-06 14:00 UTC"),
        (4003, "kicked by alice: \x1b[31mred\x07", "kicked from ops by alice: red"),
    ],
)
def test_kick_and_ban_closes_are_one_line_with_status_8(code: int, reason: str, line: str) -> None:
    exc = removed(code, "ops", reason)
    assert isinstance(exc, Removed)
    assert str(exc) == line
    assert exc.status == ExitStatus.REMOVED
    assert int(exc.status) == 8
    assert exc.banned is (code == CloseCode.BANNED)
    assert "\n" not in str(exc) and "\x1b" not in str(exc)


@pytest.mark.parametrize("code", [None, 1000, 1001, 1006, 1008, 1012, 4001, 4002, 4008])
def test_other_closes_are_not_a_removal(code: int | None) -> None:
    assert removed(code, "ops", "kicked by alice") is None


def test_kick_close_in_words() -> None:
    assert describe_close(4003, "by alice: spam") == "kicked by a moderator (4003: by alice: spam)"


def announcement(**moderation: object) -> Message:
    return Message.from_dict(
        {
            "id": 7,
            "room": "ops",
            "user": "alice",
            "kind": "moderation",
            "message": "alice muted bob for 10m: spam",
            "ts": 0.0,
            "moderation": {"action": "mute", "target": "bob", **moderation},
        }
    )


def tombstone() -> Message:
    return Message.from_dict(
        {"id": 5, "room": "ops", "user": "bob", "message": "", "ts": 0.0, "deleted": True}
    )


def test_plain_lines_of_announcements_and_tombstones() -> None:
    assert plain_body(announcement(reason="spam")) == "-!- alice muted bob for 10m: spam"
    assert plain_body(tombstone()) == "bob: (message deleted)"
    action = Message(3, "ops", "bob", "", 0.0, kind="action", deleted=True)
    assert plain_body(action) == "* bob (message deleted)"
    assert plain_line(tombstone()).endswith(" bob: (message deleted)")
    assert text_line(announcement()).endswith(" -!- alice muted bob for 10m: spam")
    hostile = Message(4, "ops", "mallory", "a\x1b[2Jb\nc", 0.0, kind="moderation")
    assert plain_body(hostile) == "-!- ab\\nc"
