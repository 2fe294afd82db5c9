"""What a user of the interactive ``chatctl join`` sees, replayed in a terminal emulator (pyte)
from a real pty against a real ``chatctl serve`` (issue 15: one line per message, Ctrl-C,
/clear, Alt-Enter, /join completion, wrapping, NO_COLOR, TERM=dumb, the status line)."""

from __future__ import annotations

import re

import pytest

from chatctl import recent
from support.cli_rooms import room_texts, say
from support.client_helpers import serving
from support.helpers import ServeProcess, free_port
from support.vt_screen import ALT_ENTER, CTRL_C, CTRL_D, PASTE_END, PASTE_START, Term, open_term

pytest.importorskip("pyte")


def test_a_sent_line_is_shown_once(srv: ServeProcess, terms: list[Term]) -> None:
    """Item 1: the input line is cleared on Enter; the server's copy is the one line shown,
    and a long paste is not left behind on the screen either."""
    term = open_term(terms, srv.port, "s1")
    term.send("fine bob thanks\r")
    term.wait_for("alice: fine bob thanks")
    term.wait_prompt("[s1]")
    assert len(term.find("fine bob thanks")) == 1, term.text()
    long = " ".join(f"w{i:04d}" for i in range(300))  # 1,799 characters, ~18 rows
    term.send(PASTE_START + long + PASTE_END + "\r")
    term.wait_for("w0299")
    term.wait_prompt("[s1]")
    assert term.text().count("w0150") == 1, term.text()
    term.quit()


def test_ctrl_c_clears_the_line_and_ctrl_d_quits(srv: ServeProcess, terms: list[Term]) -> None:
    """Item 3: Ctrl-C drops the half-typed line and keeps the session (as shells, psql and
    pgcli do); Ctrl-D on an empty line leaves with status 0."""
    term = open_term(terms, srv.port, "s2")
    term.send("half typed")
    term.wait_for("[s2] half typed")
    term.send(CTRL_C)
    term.wait_prompt("[s2]")
    assert term.child.isalive()
    term.send("after\r")
    term.wait_for("alice: after")
    term.send(CTRL_D)
    assert term.exit_status() == 0
    assert room_texts(srv.port, "s2") == ["after"]


def test_clear_leaves_a_clean_prompt_on_a_terminal_that_answers_cpr(
    srv: ServeProcess, terms: list[Term]
) -> None:
    """Item 7: /clear clears the screen while the prompt is active, so the terminal's reply
    to the cursor-position request is read by prompt-toolkit, not echoed (``^[[1;1R``)."""
    say(srv.port, "s3", "before the clear")
    term = open_term(terms, srv.port, "s3")
    term.wait_for("before the clear")
    term.send("/clear\r")
    term.wait_until(lambda: not term.find("before the clear"), "the screen to clear")
    term.send("x")
    term.wait_for("[s3] x")
    assert term.rows()[0].startswith("[s3] x"), term.text()  # the prompt at the top, intact
    assert not re.search(r"\^\[|\d;\d+R", term.text()), term.text()
    assert term.cpr_outside_prompt and not any(term.cpr_outside_prompt), "CPR without a prompt"
    term.send("\r")
    term.wait_for("alice: x")
    term.quit()


def test_alt_enter_composes_without_asking_but_a_paste_asks(
    srv: ServeProcess, terms: list[Term]
) -> None:
    """Item 8: a newline typed with Alt-Enter is deliberate; only a multi-line paste asks."""
    term = open_term(terms, srv.port, "s4")
    term.send("first line" + ALT_ENTER + "second line\r")
    term.wait_for("alice: first line")
    assert "[y/N]" not in term.text()
    row = term.find("alice: first line")[0]
    assert term.rows()[row + 1].strip() == "second line"
    assert term.rows()[row + 1].index("second") == term.rows()[row].index("first")  # indented
    term.send(PASTE_START + "pasted one\npasted two" + PASTE_END + "\r")
    term.wait_for("send this 2-line text as one message? [y/N]")
    term.send("y\r")
    term.wait_for("alice: pasted one")
    term.quit()
    assert room_texts(srv.port, "s4") == ["first line\nsecond line", "pasted one\npasted two"]


def test_join_tab_offers_recent_rooms(srv: ServeProcess, terms: list[Term]) -> None:
    """Item 8: ``/join <Tab>`` offers the recent rooms (what bash completion offers), and
    ``/join #room`` works as ``chatctl join '#room'`` does."""
    for room in ("ops-night", "ops", "general"):
        recent.remember_room(room)
    term = open_term(terms, srv.port, "#s5")
    term.wait_for("joined s5 as alice")
    term.send("/join gen\t")
    term.wait_for("[s5] /join general")
    term.send("\r")
    term.wait_for("joined general as alice")
    term.send("/join #s5\r")
    term.wait_for("joined s5 as alice")
    term.quit()


def test_long_messages_wrap_at_words_with_a_hanging_indent(
    srv: ServeProcess, terms: list[Term]
) -> None:
    """Item 9: a long message wraps between words, continuation rows under the text."""
    term = open_term(terms, srv.port, "s6", cols=60)
    words = [f"word{i}" for i in range(40)]
    say(srv.port, "s6", " ".join(words))
    term.wait_for("word39")
    first = term.find("bob: word0 ")[0]
    last = term.find("word39")[0]
    assert last - first >= 4
    column = term.rows()[first].index("word0")
    shown = []
    for row in term.rows()[first : last + 1]:
        body = row[column:]
        assert row[:column].strip() in ("", row[: column - 1].strip()), row
        shown += body.split()
        assert len(row) <= 60
    assert shown == words, term.text()
    term.quit()


def test_no_color_keeps_mentions_and_errors_visible(srv: ServeProcess, terms: list[Term]) -> None:
    """Item 9: NO_COLOR means no colours, not no emphasis: a mention is in reverse video and
    an error in bold, and nothing has a colour."""
    term = open_term(terms, srv.port, "s7", color=False)
    say(srv.port, "s7", "ping alice please")
    term.wait_for("bob: ping alice please")
    row = term.find("ping alice please")[0]
    cells = [term.screen.buffer[row][x] for x in range(len(term.rows()[row]))]
    assert all(c.reverse for c in cells if c.data.strip()), "the mention is not in reverse"
    term.send("/nosuch\r")
    term.wait_for("unknown command /nosuch")
    row = term.find("unknown command")[0]
    assert term.screen.buffer[row][term.rows()[row].index("unknown")].bold
    colours = {c.fg for line in term.screen.buffer.values() for c in line.values()}
    assert colours <= {"default"}, colours
    term.quit()


def test_dumb_terminal_prints_incoming_lines_apart_from_the_input(srv: ServeProcess) -> None:
    """Item 9: with TERM=dumb (no cursor movement) an incoming line starts on a line of its
    own, then the prompt and the text typed so far are written again."""
    term = Term(srv.port, "s8", TERM="dumb")
    try:
        term.send("half")
        term.wait_until(lambda: "[s8] half" in term.output(), "the echo")
        say(srv.port, "s8", "incoming")
        term.wait_until(lambda: "bob: incoming" in term.output(), "the message")
        term.wait_until(lambda: term.output().endswith("[s8] half"), "the prompt again")
        raw = term.output()
        line = next(ln for ln in re.split(r"[\r\n]+", raw) if "bob: incoming" in ln)
        assert re.fullmatch(r"\d\d:\d\d:\d\d bob: incoming", line), repr(line)
        # no colour, no style, no cursor movement (prompt-toolkit does write "show the cursor")
        assert not re.search(r"\x1b\[[\d;]*[mABCDGHJK]", raw), repr(raw)
        term.send(" done\r")
        term.wait_until(lambda: "alice: half done" in term.output(), "the own message")
        term.send(CTRL_D)
        assert term.exit_status() == 0
    finally:
        term.close()


def test_status_line_shows_room_users_state_and_mentions(terms: list[Term]) -> None:
    """The status line: room, users, connection state (connected / reconnecting in N s /
    offline with queued messages) and unread mentions; reconnect chatter stays there."""
    with serving() as first:
        term = open_term(terms, first.port, "s9")
        term.wait_until(lambda: "s9" in term.bottom() and "connected" in term.bottom())
        term.wait_until(lambda: bool(re.search(r"\b1 user\b", term.bottom())), "1 user")
        bob = open_term(terms, first.port, "s9", user="bob")
        term.wait_until(lambda: "2 users" in term.bottom(), "2 users")
        bob.send("hey alice\r")
        term.wait_for("bob: hey alice")
        term.wait_until(lambda: "1 mention" in term.bottom(), "1 mention")
        term.send("hi bob\r")
        term.wait_for("alice: hi bob")
        term.wait_until(lambda: "mention" not in term.bottom(), "mentions read")
        bob.quit()
        first.stop()
        term.wait_until(lambda: "reconnecting in" in term.bottom(), "reconnecting")
        term.send("while away\r")
        term.wait_until(lambda: "1 queued" in term.bottom(), "1 queued")
        with serving(port=first.port):
            term.wait_for("alice: while away", timeout=30)
            term.wait_until(lambda: "connected" in term.bottom() and "queued" not in term.bottom())
            shown = term.text()
            assert "cannot connect" not in shown and "connection closed" not in shown, shown
            assert "retrying" not in shown, shown
            term.quit()


def test_an_unreachable_server_at_first_is_status_4(terms: list[Term]) -> None:
    """Item 6: a wrong server is not retried forever: the first connection gets --timeout
    seconds (the status line says what is happening meanwhile), then one line and status 4."""
    port = free_port()
    term = open_term(terms, port, "s10", "--timeout", "2", wait=None)
    term.wait_until(lambda: "connecting" in term.bottom(), "connecting")
    assert term.exit_status() == 4
    assert f"chatctl: cannot connect to ws://127.0.0.1:{port}/ws/s10" in term.text()
    assert "Traceback" not in term.output()


def test_a_resize_leaves_one_input_line_and_the_status_line_at_the_bottom(
    srv: ServeProcess, terms: list[Term]
) -> None:
    """Item 9 (in part): shrinking and growing the terminal redraws the input line and the
    status line once, with the text typed so far; no copy of the prompt is left behind. (The
    emulator does not re-wrap lines on a resize, as VTE or kitty do: see docs/clients.md.)"""
    say(srv.port, "s12", *(f"line {i}" for i in range(10)))
    term = open_term(terms, srv.port, "s12")
    term.wait_for("line 9")
    term.send("typed " + "x" * 120)
    term.wait_for("x" * 30)
    for rows, cols in ((20, 60), (30, 100), (30, 40), (12, 100)):
        term.resize(rows, cols)
        term.wait_until(lambda: len(term.bottom()) > 5 and "s12" in term.bottom(), "status")
        term.wait_until(lambda: len(term.find("[s12] typed")) == 1, "one input line")
        assert len(term.rows()) == rows
    term.send(CTRL_C)
    term.quit()
