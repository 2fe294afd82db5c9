"""Defects of the terminal client seen in an afternoon of use (issue 24, item 5), each replayed
in pyte from a real pty against a real ``chatctl serve``: join lines after the first message,
"X joined" for everyone after a server restart, mentions read only by sending, going offline
without a trace, no ``/reconnect``, a paste's trailing newline, long URLs broken by the
wrapping, and no mention marker with ``TERM=dumb``."""

from __future__ import annotations

import re

import pytest

from support.cli_rooms import room_texts, say
from support.client_helpers import serving
from support.helpers import ServeProcess
from support.vt_screen import CTRL_C, PASTE_END, PASTE_START, Term, open_term

pytest.importorskip("pyte")


def test_a_join_line_comes_before_the_persons_first_message(
    srv: ServeProcess, terms: list[Term]
) -> None:
    term = open_term(terms, srv.port, "d1")
    bob = open_term(terms, srv.port, "d1", user="bob")
    bob.send("hi all\r")  # within the 2 s a join is held back
    term.wait_for("bob: hi all")
    term.wait_for("bob joined d1")
    assert term.find("bob joined d1")[0] < term.find("bob: hi all")[0], term.text()


def test_a_server_restart_is_not_everyone_joining_again(terms: list[Term]) -> None:
    with serving() as first:
        term = open_term(terms, first.port, "d2")
        bob = open_term(terms, first.port, "d2", user="bob")
        term.wait_until(lambda: "2 users" in term.bottom(), "2 users")
        term.wait_for("bob joined d2")
        first.stop()
        term.wait_until(lambda: "reconnecting" in term.bottom(), "reconnecting")
        bob.close()  # bob's client comes back after alice's, as a join she is told of
        with serving(port=first.port):
            term.wait_until(lambda: "connected" in term.bottom(), "reconnected", timeout=30)
            bob = open_term(terms, first.port, "d2", user="bob")
            term.wait_until(lambda: "2 users" in term.bottom(), "bob back")
            with pytest.raises(AssertionError, match="timed out"):
                term.wait_until(
                    lambda: len(term.find("bob joined d2")) > 1, "a second join line", timeout=4
                )
            term.quit()


def test_mentions_are_read_once_seen_not_only_when_you_send(
    srv: ServeProcess, terms: list[Term]
) -> None:
    term = open_term(terms, srv.port, "d3")
    say(srv.port, "d3", "alice: are you there?")
    term.wait_until(lambda: "1 mention" in term.bottom(), "1 mention")
    term.send("typing")  # at the keyboard: seen, though nothing was sent
    term.wait_until(lambda: "mention" not in term.bottom(), "the mention read")
    term.wait_until(lambda: term.screen.title == "d3 - chatctl", "the title")
    term.send(CTRL_C)
    term.quit()
    assert room_texts(srv.port, "d3") == ["alice: are you there?"]


def test_going_offline_leaves_a_line_and_what_is_typed_shows_as_pending(
    terms: list[Term],
) -> None:
    with serving() as first:
        term = open_term(terms, first.port, "d4")
        first.stop()
        term.wait_for("lost the connection to d4")
        term.send("typed offline\r")
        term.wait_for("alice (pending): typed offline")
        term.wait_until(lambda: "1 queued" in term.bottom(), "1 queued")
        # the backoff grows; /reconnect does not wait for the countdown
        term.wait_until(
            lambda: (
                (m := re.search(r"reconnecting in (\d+) s", term.bottom())) is not None
                and int(m.group(1)) >= 4
            ),
            "a long countdown",
            timeout=30,
        )
        with serving(port=first.port):
            term.send("/reconnect\r")
            term.wait_for("reconnecting to d4 now")
            term.wait_for("alice: typed offline", timeout=3)
            term.wait_until(lambda: "queued" not in term.bottom(), "sent")
            term.send("/reconnect\r")  # connected: closed and made again
            term.wait_for("reconnected to d4")
            term.quit()


def test_a_pasted_trailing_newline_is_not_sent(srv: ServeProcess, terms: list[Term]) -> None:
    term = open_term(terms, srv.port, "d5")
    term.send(PASTE_START + "copied line\n" + PASTE_END + "\r")
    term.wait_for("alice: copied line")
    term.quit()
    assert room_texts(srv.port, "d5") == ["copied line"]


def test_a_long_url_is_left_whole_for_copying(srv: ServeProcess, terms: list[Term]) -> None:
    term = open_term(terms, srv.port, "d6", cols=60)
    url = "https://example.com/builds/" + "a1b2c3d4e5" * 12
    say(srv.port, "d6", f"see {url} now")
    term.wait_for("bob: see")

    def joined() -> str:
        rows = term.rows()
        first = term.find("bob: see")[0]
        return "".join(rows[first : first + 4])

    term.wait_until(lambda: "now" in joined(), "the whole message")
    assert url in joined(), term.text()
    term.quit()


def test_dumb_terminal_marks_mentions(srv: ServeProcess) -> None:
    term = Term(srv.port, "d7", TERM="dumb")
    try:
        say(srv.port, "d7", "alice: ping", "nobody named")
        term.wait_until(lambda: "nobody named" in term.output(), "the messages")
        lines = re.split(r"[\r\n]+", term.output())
        mention = next(ln for ln in lines if "alice: ping" in ln)
        other = next(ln for ln in lines if "nobody named" in ln)
        assert re.fullmatch(r"\d\d:\d\d:\d\d >> bob: alice: ping", mention), repr(mention)
        assert ">>" not in other
        term.quit()
    finally:
        term.close()
