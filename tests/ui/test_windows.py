"""Several rooms in one terminal (issue 24, items 1-3): ``chatctl join w1 w2 w3`` in a real pty
replayed in pyte, against a real ``chatctl serve``: one window per room, the activity bar,
the switching keys, the title, ``/join`` that fails, ``/part``, the read marker after a client
restart and older messages loaded from the server with PageUp."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chatctl.config import state_dir
from support.cli_rooms import room_texts, say
from support.client_helpers import client_env, run_cli
from support.helpers import ServeProcess, make_token
from support.vt_screen import Term, open_term

pytest.importorskip("pyte")

ALT = "\x1b"
ALT_LEFT, ALT_RIGHT = "\x1b[1;3D", "\x1b[1;3C"
CTRL_N, CTRL_P = "\x0e", "\x10"
PAGE_UP = "\x1b[5~"
MARKER = "── new messages ──"


def shows(term: Term, room: str, line: str | None = None) -> None:
    """Wait until window ``room`` is the one shown (prompt and status line) and, with
    ``line``, its lines are drawn too: the status line can be drawn first (seen at load)."""
    term.wait_until(
        lambda: term.prompt_row() == f"[{room}]" and f":{room} " in term.bottom(),
        f"window {room}",
    )
    if line is not None:
        term.wait_until(lambda: line in term.text(), f"{line!r} in window {room}")


def row_of(term: Term, text: str) -> int:
    rows = term.find(text)
    assert len(rows) == 1, (text, term.text())
    return rows[0]


def test_three_rooms_activity_bar_switching_and_title(srv: ServeProcess, terms: list[Term]) -> None:
    term = open_term(terms, srv.port, "w1", "w2", "w3", rows=24)
    shows(term, "w1")
    term.wait_until(lambda: "connected" in term.bottom(), "connected")
    assert term.screen.title == "w1 - chatctl"
    say(srv.port, "w2", "two a", "two b")
    say(srv.port, "w3", "alice: look at w3")
    term.wait_until(lambda: "act: 2:w2 2, 3:w3 1 @1" in term.bottom(), "the activity bar")
    assert term.screen.title == "(1) w1 - chatctl"
    assert "two a" not in term.text() and "look at w3" not in term.text()
    # the window with a mention stands out (the mentions' colour); the other does not
    bottom = term.rows()[-1]
    cells = term.screen.buffer[len(term.rows()) - 1]
    assert cells[bottom.index("3:w3")].fg == "red" and cells[bottom.index("2:w2")].fg != "red"
    raw_status = bottom

    term.send(ALT + "3")  # Alt-3
    shows(term, "w3", "bob: alice: look at w3")
    assert row_of(term, MARKER) + 1 == row_of(term, "bob: alice: look at w3"), term.text()
    assert "joined w1" not in term.text()  # the screen is w3's own
    term.wait_until(lambda: term.screen.title == "w3 - chatctl", "the mention read")
    term.wait_until(  # read once the status line is redrawn ('' while it is)
        lambda: "act: 2:w2 2" in term.bottom() and "@" not in term.bottom(), "w2's activity"
    )

    term.send(ALT_LEFT)
    shows(term, "w2", "bob: two b")
    assert row_of(term, MARKER) < row_of(term, "bob: two a") < row_of(term, "bob: two b")
    term.wait_until(lambda: term.bottom() != "" and "act:" not in term.bottom(), "no activity")
    term.send(CTRL_N)
    shows(term, "w3", "bob: alice: look at w3")  # its lines were kept
    term.send(ALT_RIGHT)  # round the end
    shows(term, "w1")
    term.send(CTRL_P)
    shows(term, "w3")
    term.send("/window 2\r")
    shows(term, "w2")
    term.send("/window\r")
    term.wait_for("3: w3")
    term.send("in two\r")
    term.wait_for("alice: in two")
    term.send("/part\r")  # back to the window shown before
    shows(term, "w3")
    term.wait_for("left w2")
    term.send("/join w4\r")
    shows(term, "w4")
    term.wait_for("joined w4 as alice")
    term.send("/part\r")
    term.send("/part\r")
    term.wait_until(lambda: term.bottom().startswith(" w1 · "), "w1, the only window: no number")
    term.send("/part\r")  # the last window: quit
    assert term.exit_status() == 0
    assert room_texts(srv.port, "w2")[-1] == "in two"
    assert raw_status.startswith(" 1:w1 · 1 user · connected · act:"), raw_status


def test_a_failed_join_leaves_you_where_you_were(srv: ServeProcess, terms: list[Term]) -> None:
    """``/join secret`` with a token for ``fj`` only: the error stays on screen in ``fj``,
    which was never left (nobody sees a leave and a join), and nothing is printed again."""
    bob = open_term(terms, srv.port, "fj", user="bob")
    token = make_token("alice", rooms=["fj"])
    term = open_term(terms, srv.port, "fj", user="", CHATCTL_TOKEN=token)
    bob.wait_for("alice joined fj")
    bob.send("before\r")
    term.wait_for("bob: before")
    term.send("/join secret\r")
    term.wait_for("cannot join secret")
    shows_fj = lambda: term.prompt_row() == "[fj]"  # noqa: E731
    term.wait_until(shows_fj, "back in fj")
    text = term.text()
    assert text.count("joined fj as alice") == 1, text
    assert text.count("bob: before") == 1, text
    assert row_of(term, "bob: before") < row_of(term, "cannot join secret"), text
    term.send("still here\r")
    bob.wait_for("alice: still here")
    assert "alice left fj" not in bob.text(), bob.text()
    term.quit()


def test_a_failed_join_with_a_mention_unread_is_drawn_once(
    srv: ServeProcess, terms: list[Term]
) -> None:
    """The failed ``/join`` (above) with a mention just rung in the other window: back in
    ``fm``, its lines and the error are on the screen once each."""
    token = make_token("alice", rooms=["fm", "fm2"])
    term = open_term(terms, srv.port, "fm", "fm2", user="", CHATCTL_TOKEN=token)
    shows(term, "fm")
    term.wait_until(lambda: "connected" in term.bottom(), "connected")
    say(srv.port, "fm2", "alice: ping")
    term.wait_until(lambda: "@1" in term.bottom(), "the mention")
    term.send("/join secret\r")
    term.wait_for("cannot join secret")
    term.wait_until(lambda: term.prompt_row() == "[fm]", "back in fm")
    term.send("/window\r")  # a command's output after the redraw: the screen has settled
    term.wait_for("2: fm2")
    text = term.text()
    assert text.count("cannot join secret") == 1, text
    assert text.count("joined fm as alice") == 1, text
    term.quit()


@pytest.mark.parametrize("mention_in", ["other", "landed", "none"])
def test_part_notice_is_drawn_once(srv: ServeProcess, terms: list[Term], mention_in: str) -> None:
    """``/part`` of a window opened by ``/join``: the "left" line is drawn once on the window
    landed on, also when a mention just rang the bell (its write used to hold back the
    line's, printed after the redraw's clear and then drawn again by the redraw)."""
    general, dev, qa = (f"p{mention_in[0]}-{name}" for name in ("general", "dev", "qa"))
    term = open_term(terms, srv.port, general, dev)
    shows(term, general)
    term.wait_until(lambda: "connected" in term.bottom(), "connected")
    term.send(f"/join {qa}\r")
    shows(term, qa, f"joined {qa} as alice")
    if mention_in != "none":
        say(srv.port, dev if mention_in == "other" else general, "alice: ping")
        term.wait_until(lambda: "@1" in term.bottom(), "the mention")
    term.send("/part\r")
    shows(term, general, f"left {qa}")
    mark = len(term.output())
    term.send("/window\r")  # a command's output after the redraw: the screen has settled
    term.wait_for(f"1: {general}")
    text = term.text()
    assert text.count(f"left {qa}") == 1, text
    assert row_of(term, f"joined {general} as alice") < row_of(term, f"left {qa}"), text
    assert f"left {qa}" not in term.output()[mark:]  # not printed again later
    term.send(ALT + "2")
    shows(term, dev)
    term.send(ALT + "1")
    shows(term, general, f"left {qa}")
    assert term.text().count(f"left {qa}") == 1, term.text()
    term.quit()


def test_read_marker_after_a_client_restart(srv: ServeProcess, terms: list[Term]) -> None:
    say(srv.port, "rm1", *(f"old {i}" for i in range(5)))
    say(srv.port, "rm2", "other old")
    term = open_term(terms, srv.port, "rm1", "rm2")
    term.wait_for("old 4")
    term.quit()
    marks = json.loads((Path(state_dir()) / "read").read_text())
    assert marks["rm1"]["id"] == 5 and marks["rm1"]["epoch"], marks
    assert "rm2" not in marks  # never shown: nothing in it was seen
    say(srv.port, "rm1", "new 1", "new 2")
    say(srv.port, "rm2", "alice: other new")
    term = open_term(terms, srv.port, "rm1", "rm2", wait="new 2")
    term.wait_until(lambda: "connected" in term.bottom(), "connected")
    assert "old" not in term.text(), term.text()
    assert row_of(term, MARKER) < row_of(term, "bob: new 1") < row_of(term, "bob: new 2")
    term.send(ALT + "2")
    shows(term, "rm2")
    term.wait_for("bob: alice: other new")
    term.quit()
    # reopened the next day: nothing new, nothing replayed
    term = open_term(terms, srv.port, "rm1")
    text = term.text()
    assert "new 1" not in text and MARKER not in text, text
    term.quit()


def test_page_up_loads_older_messages_from_the_server(srv: ServeProcess, terms: list[Term]) -> None:
    say(srv.port, "pu1", *(f"early {i}" for i in range(30)))
    term = open_term(terms, srv.port, "pu1", "pu2", "pu3", "--history", "20", rows=40)
    term.wait_for("early 29")
    assert "early 9 " not in term.text() + " "
    term.send(PAGE_UP)
    term.wait_for("end of the older messages")
    head = row_of(term, "── 10 older messages (#1-#10) ──")
    shown = [row.split(" ", 1)[1] for row in term.rows()[head + 1 : head + 11]]
    assert shown == [f"bob: early {i}" for i in range(10)], term.text()
    term.send("/history 5\r")
    term.wait_for("no older messages of pu1 kept by the server")
    # kept in the window: drawn again, in order, after a switch and back
    term.send(ALT + "2")
    # pu2's lines drawn (its status line can come first): pu1's are off the screen
    shows(term, "pu2", "joined pu2")
    term.wait_until(lambda: "early 0" not in term.text(), "pu1's lines cleared")
    term.send(ALT + "1")
    shows(term, "pu1", "early 0")

    def in_order() -> bool:
        rows = term.rows()
        nine = [i for i, r in enumerate(rows) if r.endswith("bob: early 9")]
        ten = [i for i, r in enumerate(rows) if r.endswith("bob: early 10")]
        return bool(nine) and bool(ten) and nine < ten

    term.wait_until(in_order, "the older messages drawn above the newer ones")
    term.quit()


def test_config_lists_the_rooms_to_open(srv: ServeProcess, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[join]\nrooms = ["cfg1"]\n')
    say(srv.port, "cfg1", "from the config")
    env = client_env(srv.port, CHATCTL_CONFIG=str(config))
    res = run_cli("join", "--once", env=env)
    assert res.returncode == 0 and "bob: from the config" in res.stdout, res
    config.write_text('[join]\nrooms = ["cfg1", "cfg2"]\n')
    res = run_cli("join", "--once", env=env)
    assert res.returncode == 2 and re.search("several rooms need a terminal", res.stderr), res
