"""Close codes in words: a 1012's reason is shown unless it only says the server restarts."""

from __future__ import annotations

from chatctl.client.closing import describe_close


def test_a_restart_is_said_in_words_only() -> None:
    assert describe_close(1012, "server restarting") == "the server is restarting (1012)"
    assert describe_close(1012, "") == "the server is restarting (1012)"


def test_a_1012_for_missed_messages_says_so() -> None:
    """The hub closes a room's connections with 1012 when its Redis feed lost trimmed
    messages or the room's history was lost: the user reads why, not 'restarting'."""
    got = describe_close(1012, "messages were missed: reconnect")
    assert got == (
        "the server asked this client to reconnect (1012: messages were missed: reconnect)"
    )


def test_other_ordinary_closes_keep_their_words() -> None:
    assert describe_close(1001, "going away") == "the server is shutting down (1001)"
    assert describe_close(1008, "rate limit exceeded") == (
        "closed by the server for breaking its rules (1008: rate limit exceeded)"
    )
    assert describe_close(None) == "connection lost"
