"""The status line, the renderer's wrapping and emphasis, and the help texts of the
interactive client, tested without a terminal."""

from __future__ import annotations

import re

from prompt_toolkit.document import Document
from prompt_toolkit.formatted_text import fragment_list_to_text

from chatctl.protocol import Message
from chatctl.ui import commands, keys
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.render import Renderer, color_mode
from chatctl.ui.toolbar import Link, Status, toolbar_fragments
from genlib import ROOT


def line(status: Status, now: float = 100.0) -> str:
    return fragment_list_to_text(toolbar_fragments(status, now))


def test_status_line_says_room_users_connection_queue_and_mentions() -> None:
    status = Status("ops", users=3, link=Link.CONNECTED)
    assert line(status) == " ops · 3 users · connected "
    status.mentions = 1
    assert line(status) == " ops · 3 users · connected · 1 mention "
    status = Status("ops", users=1, link=Link.RECONNECTING, reason="connection refused")
    status.retry_at, status.queued = 103.2, 2
    assert line(status) == " ops · reconnecting in 4 s (connection refused) · 2 queued "
    status.link, status.reason = Link.OFFLINE, "the server is restarting (1012)"
    assert line(status) == " ops · offline (the server is restarting (1012)) · 2 queued "
    assert line(Status("ops")) == " ops · connecting "
    status = Status("ops", link=Link.OFFLINE, reason="token expired", queued=1)
    status.token = "token expired: waiting for command 'vault read'"
    assert line(status) == (
        " ops · offline (token expired) · token expired: waiting for command 'vault read' · "
        "1 queued "
    )


def test_messages_wrap_between_words_under_the_text() -> None:
    r = Renderer(me="alice", color=False, width=lambda: 40)
    text = " ".join(f"w{i}" for i in range(30))
    out, _ = r.message(Message(1, "ops", "bob", text, 0.0))
    rows = out.split("\n")
    assert all(len(row) < 40 for row in rows) and len(rows) > 2
    indent = rows[0].index("w0")
    assert all(row.startswith(" " * indent) and row[indent] != " " for row in rows[1:])
    assert " ".join(row.strip() for row in rows).endswith(text)
    narrow = Renderer(color=False, width=lambda: 25)  # too narrow to indent: left alone
    assert "\n" not in narrow.message(Message(1, "ops", "bob", text, 0.0))[0]


def test_no_color_keeps_emphasis_and_dumb_terminals_get_none() -> None:
    assert color_mode({}, {"TERM": "xterm"}) == "color"
    assert color_mode({}, {"TERM": "xterm", "NO_COLOR": "1"}) == "mono"
    assert color_mode({"color": False}, {"TERM": "xterm"}) == "mono"
    assert color_mode({}, {"TERM": "dumb", "NO_COLOR": "1"}) == "plain"
    mono = Renderer(me="alice", color=False, emphasis=True)
    mention, flagged = mono.message(Message(1, "ops", "bob", "hi alice", 0.0))
    assert flagged and re.fullmatch(r"\x1b\[1;7m[\d:]+ bob: hi alice\x1b\[0m", mention)
    plain_line, _ = mono.message(Message(1, "ops", "bob", "hi all", 0.0))
    assert "\x1b" not in plain_line  # no colour, and nothing else to emphasise
    assert re.search(r"\x1b\[1m-!- \x1b\[0m\x1b\[1mboom", mono.system("boom", error=True))
    assert (
        "\x1b"
        not in Renderer(me="alice", color=False).message(Message(1, "ops", "bob", "hi alice", 0.0))[
            0
        ]
    )


def test_join_completes_recent_rooms_with_or_without_hash() -> None:
    completer = ChatCompleter({}, list, {"/join": lambda: ["ops-night", "ops", "general"]})

    def complete(text: str) -> list[str]:
        doc = Document(text, len(text))
        return [c.text for c in completer.get_completions(doc, None)]  # type: ignore[arg-type]

    assert complete("/join op") == ["ops-night", "ops"]
    assert complete("/join #gen") == ["general"]


def test_man_page_and_docs_list_every_command_and_key() -> None:
    """``man chatctl-join`` and docs/clients.md name every /command, alias and key."""
    page = (ROOT / "man" / "chatctl-join.1").read_text().replace("\\-", "-")
    docs = (ROOT / "docs" / "clients.md").read_text()
    for cmd in commands.COMMANDS:
        for name in (cmd.name, *cmd.aliases):
            assert f"/{name}" in page, f"man chatctl-join lacks /{name}"
            assert f"/{name}" in docs, f"docs/clients.md lacks /{name}"
    table = (keys.__doc__ or "").split("=\n", 1)[1]
    names = [row.split("  ")[0].strip() for row in table.splitlines() if row[:1].isalpha()]
    assert len(names) >= 8
    for key in names:
        for part in key.split(" / "):
            assert part in page, f"man chatctl-join lacks the key {part}"
            assert part in docs, f"docs/clients.md lacks the key {part}"


def test_activity_bar_numbers_the_window_and_lists_the_others_with_mentions_apart() -> None:
    from chatctl.ui.toolbar import Activity

    status = Status("ops", users=3, link=Link.CONNECTED, window=2)
    status.activity = [Activity(1, "general", 4, 0), Activity(3, "dev", 2, 1)]
    assert line(status) == " 2:ops · 3 users · connected · act: 1:general 4, 3:dev 2 @1 "
    styles = {text: style for style, text, *_ in toolbar_fragments(status, 100.0)}
    assert styles["3:dev 2 @1"] == "class:toolbar.mentions"
    assert styles["1:general 4"] == "class:toolbar.activity"


def test_long_words_are_left_to_the_terminal_and_dumb_mentions_are_marked() -> None:
    url = "https://example.com/" + "x" * 80
    wrapped = Renderer(me="alice", color=False, width=lambda: 60)
    out, _ = wrapped.message(Message(1, "ops", "bob", f"see {url} and a few more words", 0.0))
    assert url in out and "\n" not in out  # one line: the terminal wraps it softly
    plain = Renderer(me="alice", color=False, emphasis=False)
    out, mention = plain.message(Message(2, "ops", "bob", "alice: hi", 0.0))
    assert mention and re.fullmatch(r"\d\d:\d\d:\d\d >> bob: alice: hi", out), out
