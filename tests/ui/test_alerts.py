"""Alerts of ``chatctl join`` on a terminal (issue 26, item 2): a message naming you or a
highlight word, in any window, rings the bell, counts in the terminal's title (OSC 2) and runs
the ``--notify-command`` with the room, user and text as arguments; ``/highlight`` adds,
lists and removes words and keeps them for the next session. Real ``chatctl serve``, real
pty (pyte for the screen, the raw output for BEL and OSC), a real command writing its argv
to a file."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from chatctl.config import state_dir
from chatctl.errors import ConfigError
from chatctl.ui.config import JoinConfig
from chatctl.ui.notify import alerts, names, notify_argv
from support.cli_rooms import say
from support.client_helpers import client_env, run_cli
from support.helpers import ServeProcess, wait_until
from support.vt_screen import Term, open_term

pytest.importorskip("pyte")

#: OSC strings (a title: ESC ] 2 ; TEXT BEL); what is left holds the bells rung on their own
OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
#: a command that appends its arguments to the file named first, one JSON list a line
RECORDER = """\
import json, sys
with open(sys.argv[1], "a", encoding="utf-8") as f:
    f.write(json.dumps(sys.argv[2:]) + "\\n")
"""


def bells(term: Term) -> int:
    return OSC.sub("", term.output()).count("\a")


def titles(term: Term) -> list[str]:
    return re.findall(r"\x1b\][02];([^\x07\x1b]*)", term.output())


def recorder(tmp_path: Path) -> tuple[str, Path]:
    script, out = tmp_path / "record.py", tmp_path / "calls"
    script.write_text(RECORDER)
    return f"{sys.executable} {script} '{out}'", out


def calls(out: Path, count: int) -> list[list[str]]:
    """The notify command's calls, once there are ``count`` (the file the command writes)."""

    def lines() -> list[str]:
        return out.read_text().splitlines() if out.exists() else []

    wait_until(lambda: len(lines()) >= count, timeout=15)
    return [json.loads(line) for line in lines()]


def test_mentions_and_highlights_in_any_window_bell_title_and_command(
    srv: ServeProcess, terms: list[Term], tmp_path: Path
) -> None:
    command, out = recorder(tmp_path)
    term = open_term(
        terms, srv.port, "nt1", "nt2", "--highlight", "deploy", "--notify-command", command
    )
    term.wait_until(lambda: "connected" in term.bottom(), "connected")
    assert bells(term) == 0 and term.screen.title == "nt1 - chatctl"

    say(srv.port, "nt2", "Deploy at noon?", "the deployed build", "ALICE: look")
    term.wait_until(lambda: term.screen.title == "(2) nt1 - chatctl", "two alerts in the title")
    term.wait_until(lambda: "act: 2:nt2 3 @2" in term.bottom(), "the activity bar")
    # the two run at once: in either order
    assert sorted(calls(out, 2)) == [
        ["nt2", "bob", "ALICE: look"],
        ["nt2", "bob", "Deploy at noon?"],
    ]
    term.wait_until(lambda: bells(term) == 2, "two bells")
    assert "(2) nt1 - chatctl" in titles(term)

    # in the window shown too; your own message naming a word alerts nobody
    term.send("deploy is done, alice\r")
    term.wait_for("alice: deploy is done, alice")
    say(srv.port, "nt1", "alice: thanks")
    term.wait_for("bob: alice: thanks")
    assert calls(out, 3)[2:] == [["nt1", "bob", "alice: thanks"]]
    term.wait_until(lambda: term.screen.title == "(3) nt1 - chatctl", "three alerts")
    term.wait_until(lambda: bells(term) == 3, "three bells")
    assert len(calls(out, 3)) == 3
    term.send("/highlight -deploy\r")
    term.wait_for("cannot remove deploy: deploy comes from --highlight or config.toml")
    term.quit()


def test_highlight_command_adds_lists_removes_and_keeps_words(
    srv: ServeProcess, terms: list[Term]
) -> None:
    term = open_term(terms, srv.port, "hl")
    term.send("/highlight\r")
    term.wait_for("no highlight words")
    term.send("/highlight outage db-1\r")
    term.wait_for("highlighting db-1")
    say(srv.port, "hl", "an OUTAGE on db-1", "no outages here")
    term.wait_for("no outages here")
    term.wait_until(lambda: "1 mention" in term.bottom(), "one mention")
    term.wait_until(lambda: bells(term) == 1, "one bell")
    # in the mentions' colours, as your name; the other line as any other
    for text, bg in (("OUTAGE", "brown"), ("outages", "default")):
        row = term.find(text)[0]
        assert term.screen.buffer[row][term.rows()[row].index(text)].bg == bg, text
    assert (state_dir() / "highlight").read_text() == "outage\ndb-1\n"
    term.quit()

    term = open_term(terms, srv.port, "hl")  # the words are kept
    term.send("/highlight\r")
    term.wait_for("highlight words: outage, db-1 (and your name)")
    term.send("/highlight -outage\r")
    term.wait_for("outage is no longer highlighted")
    term.send("/unhighlight nothing\r")
    term.wait_for("nothing is not a highlight word")
    term.send("/highlight two  words\r")
    term.wait_for("highlighting words")
    term.send("/highlight\r")
    term.wait_for("highlight words: db-1, two, words (and your name)")
    term.quit()
    assert (state_dir() / "highlight").read_text() == "db-1\ntwo\nwords\n"


def test_a_failing_notify_command_is_shown_on_the_status_line(
    srv: ServeProcess, terms: list[Term], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-command"
    term = open_term(terms, srv.port, "nf", "--notify-command", f"'{missing}' --flag")
    say(srv.port, "nf", "alice, hello")
    term.wait_until(
        lambda: "no-such-command: No such file or directory" in term.bottom(), "the failure"
    )
    term.wait_until(lambda: bells(term) == 1, "the bell")
    term.send("still here\r")  # the session goes on
    term.wait_for("alice: still here")
    term.quit()


def test_notify_command_from_config_and_its_mistakes(
    srv: ServeProcess, terms: list[Term], tmp_path: Path
) -> None:
    command, out = recorder(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(f"[join]\nnotify_command = {json.dumps(command)}\nhighlight = ['ci']\n")
    term = open_term(terms, srv.port, "nc", CHATCTL_CONFIG=str(config))
    shell = f"$(touch {tmp_path}/pwned) alice"  # an argument, never shell syntax
    say(srv.port, "nc", "CI is red", shell)
    assert sorted(calls(out, 2)) == sorted([["nc", "bob", "CI is red"], ["nc", "bob", shell]])
    assert not (tmp_path / "pwned").exists()
    term.quit()

    bad = run_cli("join", "nc", "--notify-command", 'notify "unclosed', env=client_env(srv.port))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "--notify-command: No closing quotation" in bad.stderr, bad.stderr
    config.write_text("[join]\nhighlight = ['two words']\n")
    term = open_term(terms, srv.port, "nc", wait=None, CHATCTL_CONFIG=str(config))
    assert term.exit_status() == 2
    assert "[join] highlight: 'two words' is not a highlight word" in term.text(), term.text()


def test_what_alerts() -> None:
    assert names("Deploy!", "deploy") and names("@alice:", "alice")
    assert not names("deployed", "deploy") and not names("pre-deploy", "deploy")
    assert alerts("general", "bob", "alice", mention=True)
    assert not alerts("general", "bob", "alice", mention=False)
    assert not alerts("general", "alice", "alice", mention=True)  # your own
    # a direct message (a window named @bob, as DMs are named) alerts without a mention
    assert alerts("@bob", "bob", "alice", mention=False)
    assert not alerts("@bob", "alice", "alice", mention=False)


def test_config_keys_and_flags() -> None:
    config = JoinConfig.from_config(
        {"join": {"highlight": ["ci", "deploy"], "notify_command": "notify-send -a chatctl"}}
    )
    assert config.highlight == ("ci", "deploy")
    assert config.given().highlight == ("ci", "deploy")
    flagged = config.given(highlight=["outage"], notify_command="say 'it is' here")
    assert flagged.highlight == ("outage",) and flagged.notify_command == "say 'it is' here"
    assert notify_argv(flagged.notify_command) == ["say", "it is", "here"]
    for bad, why in (
        ({"highlight": "ci"}, "highlight must be a list"),
        ({"highlight": [1]}, "highlight must be a list of words"),
        ({"notify_command": ["notify-send"]}, "notify_command must be a str"),
        ({"notify_command": "  "}, "notify_command: empty command"),
    ):
        with pytest.raises(ConfigError, match=why):
            JoinConfig.from_config({"join": bad})
    with pytest.raises(ConfigError, match="--highlight: 'a b' is not a highlight word"):
        config.given(highlight=["a b"])
