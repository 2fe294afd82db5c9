"""stdout and stdin of ``chatctl send`` and ``chatctl join`` in pipes (issue 22 item 10): a
reader that leaves, a full disk, bytes that are not UTF-8, a byte-order mark. Real processes,
real pipes, /dev/full, a real server."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from support.client_helpers import CHATCTL, client_env, run_cli, serving
from support.helpers import ServeProcess


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    # --history above the 5,000 lines a test may send: stored() reads the whole room back
    with serving("--memory", "--history", "10000") as server:
        yield server


def stored(port: int, room: str) -> list[str]:
    """Every message of ``room``, oldest first, read in pages (one welcome holds at most
    the server's --history, and --max-pending bytes)."""
    texts: list[str] = []
    last = 0
    while True:
        res = run_cli("join", room, "--since", str(last), "--once", "--json", env=client_env(port))
        assert res.returncode == 0 and res.stderr == "", res.stderr
        page = [json.loads(line) for line in res.stdout.splitlines()]
        if not page:
            return texts
        assert page[0]["id"] == last + 1  # no gap
        texts += [m["message"] for m in page]
        last = page[-1]["id"]


def test_send_json_into_a_reader_that_stops(srv: ServeProcess) -> None:
    """``seq 1 5000 | chatctl send r --json | head -1`` was status 1 (the "bug" status), no
    word, 1,000 lines sent. Now: status 141, one line saying how far it got, and exactly the
    lines it says were acked are stored, in order, from line 1."""
    proc = subprocess.Popen(
        [*CHATCTL, "send", "pipe", "--json"],
        env=client_env(srv.port),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write("".join(f"{i}\n" for i in range(1, 5001)))
    proc.stdin.close()
    assert json.loads(proc.stdout.readline())["type"] == "ack"
    proc.stdout.close()  # head -1 exits
    assert proc.wait(30) == 141
    err = proc.stderr.read()
    found = re.fullmatch(
        r"chatctl: stdout was closed by its reader; stopped after line (\d+) of stdin, "
        r"(\d+) messages acked\n",
        err,
    )
    assert found, err
    read, acked = int(found[1]), int(found[2])
    assert read == acked < 5000
    assert stored(srv.port, "pipe") == [str(i) for i in range(1, acked + 1)]


def test_join_notices_a_closed_stdout_in_a_quiet_room(srv: ServeProcess) -> None:
    """``join --json | head -1`` went on running until the next message came; now it ends
    as soon as the reader is gone, with nothing more sent to the room."""
    assert run_cli("send", "quiet", "one", env=client_env(srv.port)).returncode == 0
    proc = subprocess.Popen(
        [*CHATCTL, "join", "quiet", "--json", "--history", "1"],
        env=client_env(srv.port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["message"] == "one"  # connected, printing
    proc.stdout.close()
    try:
        status = proc.wait(10)
    finally:
        proc.kill()
    assert status == 141
    assert proc.stderr.read() == ""  # the reader knows it left: nothing to say


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_one_line_and_status_7(srv: ServeProcess) -> None:
    """``--json > /dev/full`` was "internal error: OSError", status 1."""
    env = client_env(srv.port)
    with open("/dev/full", "w") as full:
        send = subprocess.run(
            [*CHATCTL, "send", "full", "--json", "hello"],
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
        join = subprocess.run(
            [*CHATCTL, "join", "full", "--json", "--once"],
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=30,
        )
    assert (send.returncode, send.stderr) == (
        7,
        "chatctl: cannot write to stdout: No space left on device; stopped, 1 message acked\n",
    )
    assert (join.returncode, join.stderr) == (
        7,
        "chatctl: cannot write to stdout: No space left on device\n",
    )


def test_stdin_not_utf8_is_refused_by_line_and_the_bom_dropped(srv: ServeProcess) -> None:
    """Invalid UTF-8 became U+FFFD silently and a byte-order mark was sent as part of the
    first message. Now the mark is dropped, the bad line is named and not sent (status 6),
    and ``--encoding-errors replace`` sends it with U+FFFD."""
    data = b"\xef\xbb\xbffirst\nbad \xff\xfe here\nlast\n"
    env = client_env(srv.port)
    strict = subprocess.run(
        [*CHATCTL, "send", "utf"], env=env, input=data, capture_output=True, timeout=30
    )
    assert strict.returncode == 6
    why = "not valid UTF-8 (byte 0xff at byte 5); --encoding-errors replace sends such lines"
    assert strict.stderr.decode() == (
        f"chatctl: line 2 not sent: {why} with U+FFFD\n"
        f"chatctl: 1 of 3 messages not sent; first: line 2: {why} with U+FFFD\n"
    )
    assert stored(srv.port, "utf") == ["first", "last"]
    replace = subprocess.run(
        [*CHATCTL, "send", "utf", "--encoding-errors", "replace"],
        env=env,
        input=data,
        capture_output=True,
        timeout=30,
    )
    assert replace.returncode == 0, replace.stderr
    assert stored(srv.port, "utf")[2:] == ["first", "bad \ufffd\ufffd here", "last"]
    argv = subprocess.run(
        [*CHATCTL, "send", "utf", b"a\xffb"], env=env, capture_output=True, timeout=30
    )
    assert argv.returncode == 2 and argv.stderr.decode() == (
        "chatctl: the message is not valid UTF-8 (--encoding-errors replace sends it with U+FFFD)\n"
    )
