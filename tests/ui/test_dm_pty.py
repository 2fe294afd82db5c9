"""Direct messages in ``chatctl join`` (issue 26, part 1): a real pty replayed in pyte
against a real ``chatctl serve``: the unread conversations listed at start, a live notice,
``/msg USER TEXT`` sent from a window of its own, ``/query USER`` showing it, and the
mistakes answered with one line."""

from __future__ import annotations

import json

import pytest

from support.client_helpers import client_env, run_cli
from support.helpers import ServeProcess
from support.vt_screen import Term, open_term

pytest.importorskip("pyte")


def dm(port: int, sender: str, to: str, *texts: str) -> None:
    env = client_env(port, sender)
    res = run_cli("send", f"@{to}", env=env, input="".join(t + "\n" for t in texts))
    assert res.returncode == 0, res.stderr


def conversation(port: int, user: str, peer: str) -> list[tuple[str, str]]:
    res = run_cli("history", f"@{peer}", "--json", env=client_env(port, user))
    return [(m["user"], m["message"]) for m in map(json.loads, res.stdout.splitlines())]


def test_unread_at_start_live_notice_msg_and_query(srv: ServeProcess, terms: list[Term]) -> None:
    dm(srv.port, "amy", "ben", "are you there?", "ping me")
    term = open_term(terms, srv.port, "lobby", user="ben")
    term.wait_for("2 unread direct messages from amy: /query amy opens them")

    dm(srv.port, "cy", "ben", "hello from cy")  # live, on the lobby connection
    term.wait_for("1 unread direct message from cy: /query cy opens them")

    term.send("/msg amy on my way\r")
    term.wait_for("to @amy: on my way  (window 2: Alt-2 or /query amy)")
    term.wait_until(lambda: ("ben", "on my way") in conversation(srv.port, "amy", "ben"), "sent")
    term.wait_prompt("[lobby]")  # /msg stays where you are (read once the redraw is done)

    term.send("/query amy\r")
    term.wait_until(lambda: term.prompt_row() == "[@amy]", "the @amy window")
    term.wait_for("amy: ping me")
    assert "amy: are you there?" in term.text() and "ben: on my way" in term.text()
    term.send("thanks\r")
    term.wait_until(lambda: ("ben", "thanks") in conversation(srv.port, "amy", "ben"), "sent")


def test_mistakes_get_one_line_and_nothing_is_sent(srv: ServeProcess, terms: list[Term]) -> None:
    term = open_term(terms, srv.port, "lobby", user="dee")
    term.send("/msg eve\r")
    term.wait_for("usage: /msg USER TEXT")
    term.send("/query\r")
    term.wait_for("usage: /query USER")
    term.send("/join @\r")
    term.wait_for("invalid user name for a direct message")
    term.wait_prompt("[lobby]")
    assert conversation(srv.port, "eve", "dee") == []
