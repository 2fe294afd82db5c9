"""The interactive ``chatctl join`` driven through a real pty (pexpect) against a real
``chatctl serve``. Every wait is on output (expect), never on a sleep."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pexpect
import pytest

from support.cli_rooms import room_texts, say
from support.client_helpers import CHATCTL, client_env, serving
from support.helpers import ServeProcess, make_token
from support.vt_screen import Term

UP = "\x1b[A"
CTRL_C, CTRL_D = "\x03", "\x04"


def spawn(
    port: int, room: str, *args: str, user: str = "alice", color: bool = False, **env: str
) -> pexpect.spawn:
    full_env = client_env(
        port, user, **{"TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1", **env}
    )
    if not color:
        full_env["NO_COLOR"] = "1"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "chatctl", "join", room, *args],
        env=full_env,
        encoding="utf-8",
        timeout=15,
        dimensions=(40, 160),
    )
    # Up to the prompt, which is drawn once the input line is in raw mode: keys typed before
    # that can be lost in the switch from cooked mode (seen on a loaded machine: a "/who"
    # never arrived). ``before`` keeps what came before the joined line (the history).
    child.expect(re.escape(f"joined {room} as {user}") + ".*?" + re.escape(f"[{room}]"))
    return child


def quit_cleanly(child: pexpect.spawn, keys: str = "/quit\r") -> None:
    child.send(keys)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


def test_input_line_survives_incoming_messages(srv: ServeProcess) -> None:
    say(srv.port, "r1", "earlier")
    child = spawn(srv.port, "r1", color=True)
    assert "bob" in child.before  # history shown on join
    child.send("hello wor")
    say(srv.port, "r1", *(f"incoming {i}" for i in range(5)))
    child.expect("incoming 4")
    child.send("ld\r")
    child.expect("alice")
    child.expect("hello world")
    assert "\x1b[" in child.before or "\x1b[" in child.after  # colours on a colour terminal
    quit_cleanly(child)
    assert room_texts(srv.port, "r1")[-1] == "hello world"


def test_who_me_tab_completion_and_quit(srv: ServeProcess) -> None:
    child = spawn(srv.port, "r2")
    bob = subprocess.Popen(
        [*CHATCTL, "join", "r2", "--json"],
        env=client_env(srv.port, "bob"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert bob.stdout is not None
        # /who lists bob once he is in (under load his join came after an early /who)
        child.expect("bob joined r2")
        child.send("/who\r")
        child.expect(r"users in r2 \(2\): alice bob")
        child.send("/wh\t")  # Tab completes the command (the redraw writes the missing "o")
        child.expect("o")
        child.send("\r")
        child.expect(r"users in r2 \(2\): alice bob")
        child.send("b\t")  # Tab completes the user name, IRC style
        child.expect("ob:")
        child.send("hi there\r")
        child.expect("alice: bob: hi there")
        child.send("/me waves\r")
        child.expect(r"\* alice waves")
        child.send("/nosuch\r")
        child.expect("unknown command /nosuch")
        child.send("/help\r")
        child.expect("/bell")
        quit_cleanly(child)
        texts: list[tuple[str, str]] = []
        while len(texts) < 2:
            frame = json.loads(bob.stdout.readline())
            if frame["type"] == "message":
                texts.append((frame["kind"], frame["message"]))
        assert texts == [("text", "bob: hi there"), ("action", "waves")]
    finally:
        bob.terminate()
        bob.wait()


def test_mention_rings_the_bell_unless_turned_off(srv: ServeProcess) -> None:
    child = spawn(srv.port, "r3")
    say(srv.port, "r3", "ping alice")
    child.expect("bob: ping alice")  # NO_COLOR: no escape code inside the line
    child.expect("\a")
    child.send("/bell off\r")
    child.expect("bell on mentions is off")
    say(srv.port, "r3", "again alice", "marker")
    child.expect("again alice")
    child.expect("marker")
    assert "\a" not in child.before
    quit_cleanly(child)


@pytest.mark.parametrize("key", [CTRL_D, CTRL_C + CTRL_D, "SIGTERM"])
def test_ctrl_d_and_sigterm_exit_cleanly_and_restore_the_terminal(
    srv: ServeProcess, key: str
) -> None:
    env = client_env(srv.port, TERM="xterm-256color", NO_COLOR="1", PROMPT_TOOLKIT_NO_CPR="1")
    # the inner sh prints its pid, then becomes chatctl (in the foreground, on the pty)
    inner = "echo pid=$$; exec " + " ".join(CHATCTL) + " join r4"
    cmd = f"sh -c '{inner}'; echo rc=$?; stty -a"
    child = pexpect.spawn("sh", ["-c", cmd], env=env, encoding="utf-8", timeout=15)
    if key == "SIGTERM":
        child.expect(r"pid=(\d+)")
        pid = int(child.match.group(1))
    child.expect("joined r4")
    if key == "SIGTERM":
        os.kill(pid, signal.SIGTERM)
    else:
        child.send(key)
    child.expect(r"rc=(\d+)")
    assert child.match.group(1) == "0"
    child.expect(pexpect.EOF)
    modes = child.before.split()
    assert "icanon" in modes and "echo" in modes and "-icanon" not in modes


def test_input_history_is_kept_across_runs(srv: ServeProcess) -> None:
    child = spawn(srv.port, "r5")
    child.send("remember me\r")
    child.expect("alice: remember me")
    quit_cleanly(child)
    child = spawn(srv.port, "r5")
    child.send(UP + UP + "\r")  # Up twice: /quit, then the message
    child.expect("alice: remember me")
    quit_cleanly(child)
    assert room_texts(srv.port, "r5") == ["remember me", "remember me"]


def test_multiline_paste_is_asked_about_and_sent_as_one_message(srv: ServeProcess) -> None:
    child = spawn(srv.port, "r6")
    child.send("\x1b[200~first line\nsecond line\x1b[201~\r")
    child.expect(r"send this 2-line text as one message\? \[y/N\]")
    child.send("n\r")
    child.expect("not sent")
    child.send(UP + "\r")  # recalled on purpose (not a paste): sent without asking again
    child.expect("second line")
    quit_cleanly(child)
    assert room_texts(srv.port, "r6") == ["first line\nsecond line"]


def test_dumb_terminal_gets_no_escape_colours(srv: ServeProcess) -> None:
    say(srv.port, "r7", "plain please")
    child = spawn(srv.port, "r7", TERM="dumb", color=True)
    assert "bob: plain please" in child.before
    child.send("typed on dumb\r")
    child.expect("alice: typed on dumb")
    assert "\x1b[38" not in child.before
    quit_cleanly(child)


def test_expired_token_is_one_line_and_status_3(srv: ServeProcess) -> None:
    env = client_env(srv.port, "", TERM="xterm", NO_COLOR="1")
    env["CHATCTL_TOKEN"] = make_token("alice", ttl=-100)
    child = pexpect.spawn(
        sys.executable, ["-m", "chatctl", "join", "r8"], env=env, encoding="utf-8"
    )
    child.expect("chatctl: authentication failed: token expired at ")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert "Traceback" not in child.before


@pytest.mark.slow
def test_reconnects_after_restart_and_reports_lost_memory_history() -> None:
    """The status line says the client is reconnecting (prompt-toolkit redraws only what
    changed there, so it is read off the emulated screen); the typed draft survives."""
    with serving() as first:
        term = Term(first.port, "ops", color=False)
        try:
            term.send("draft kept")
            first.stop()
            term.wait_until(lambda: "reconnecting in" in term.bottom(), "reconnecting")
            with serving(port=first.port) as second:
                term.wait_for("reconnected to ops", timeout=30)
                term.wait_for("missed messages: ops lost its history on the server")
                say(second.port, "ops", "after restart")
                term.wait_for("bob: after restart")
                term.send(" intact\r")
                term.wait_for("alice: draft kept intact")
                term.quit()
        finally:
            term.close()


@pytest.mark.slow
@pytest.mark.redis
def test_reconnects_after_restart_with_redis_and_misses_nothing(redis_url: str) -> None:
    with serving("--redis-url", redis_url) as first:
        say(first.port, "ops", "before")
        term = Term(first.port, "ops", color=False)
        try:
            assert term.find("bob: before")
            first.stop()
            term.wait_until(lambda: "reconnecting in" in term.bottom(), "reconnecting")
            with serving("--redis-url", redis_url, port=first.port) as second:
                say(second.port, "ops", "while down")
                term.wait_for("reconnected to ops", timeout=30)
                term.wait_for("bob: while down")
                assert "missed" not in term.text()
                say(second.port, "ops", "live again")
                term.wait_for("bob: live again")
                term.quit()
        finally:
            term.close()


def test_join_command_switches_rooms(srv: ServeProcess) -> None:
    child = spawn(srv.port, "r9a")
    child.send("/join r9b\r")
    child.expect("joined r9b as alice")
    child.send("now in b\r")
    child.expect("alice: now in b")
    child.send("/join bad room!\r")
    child.expect("invalid room name")
    quit_cleanly(child)
    assert room_texts(srv.port, "r9b") == ["now in b"]
    assert room_texts(srv.port, "r9a") == []


def test_brief_visits_are_quiet_but_joins_and_leaves_are_shown(srv: ServeProcess) -> None:
    child = spawn(srv.port, "r10")
    say(srv.port, "r10", "quick visit")  # chatctl send: connects, posts, leaves
    child.expect("bob: quick visit")
    bob = subprocess.Popen(
        [*CHATCTL, "join", "r10"],
        env=client_env(srv.port, "bob"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        child.expect("bob joined r10")
        assert "left" not in child.before and "joined" not in child.before
    finally:
        bob.terminate()
        bob.wait()
    child.expect("bob left r10")
    quit_cleanly(child)


def test_screen_keeps_the_input_line_at_the_bottom(srv: ServeProcess) -> None:
    """Replay the pty output in a terminal emulator: messages arriving while typing scroll
    by above, and the bottom row still shows the prompt with the text typed so far."""
    pyte = pytest.importorskip("pyte")
    screen = pyte.Screen(160, 40)  # the size spawn() gives the pty
    stream = pyte.Stream(screen)
    child = spawn(srv.port, "r11", color=True)
    stream.feed(child.before + child.after)
    child.logfile_read = type(
        "Feed", (), {"write": lambda _, s: stream.feed(s), "flush": lambda _: None}
    )()
    child.send("half a sent")
    child.expect("half a sent")
    n = 60  # more lines than the screen has: it scrolls
    say(srv.port, "r11", *(f"incoming {i}" for i in range(n)))
    child.expect(f"incoming {n - 1}")
    child.send("ence")
    child.expect("ence")
    rows = [line.rstrip() for line in screen.display]
    assert rows[-1] == "[r11] half a sentence"
    assert (screen.cursor.y, screen.cursor.x) == (39, len(rows[-1]))
    shown = [row.split(" ", 1)[1] for row in rows[:-1]]
    assert shown == [f"bob: incoming {i}" for i in range(n - 39, n)]
    name = screen.buffer[38][9]  # the "b" of bob on the last message row: coloured, intact
    assert name.data == "b" and name.fg != "default"
    assert screen.buffer[38][0].fg != name.fg  # the time column has its own style
    quit_cleanly(child, "\r/quit\r")


def test_a_webhook_s_display_name_shows_with_its_user(srv: ServeProcess) -> None:
    from chatctl.tokens.mint import mint
    from support.curl import curl_path
    from support.helpers import SECRET

    def post(text: str) -> None:
        hook = mint(SECRET, "ci", ttl=3600, hook="rdisplay", display=True)
        body = json.dumps({"text": text, "username": "Grafana"})
        url = f"http://127.0.0.1:{srv.port}/hooks/{hook}"
        done = subprocess.run([curl_path(), "-sf", "-H", "Content-Type: application/json",
                               "-d", body, url], capture_output=True, timeout=20)  # fmt: skip
        assert done.returncode == 0, done.stderr

    post("from history")
    child = spawn(srv.port, "rdisplay")
    assert "Grafana (via ci): from history" in child.before
    post("live one")
    child.expect(re.escape("Grafana (via ci): live one"))
    quit_cleanly(child)
