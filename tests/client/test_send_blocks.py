"""``chatctl send --whole`` / ``-0`` / ``--paragraphs``: stdin as one message or as blocks,
not one message per line (issue 25 item 3: a traceback could only be sent as an argument)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from support.client_helpers import CHATCTL, client_env, run_cli, serving
from support.helpers import ServeProcess

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "job.py", line 3, in <module>\n'
    "    main()\n"
    "ZeroDivisionError: division by zero\n"
)


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    with serving() as srv:
        yield srv


def stored(port: int, room: str) -> list[str]:
    res = run_cli("join", room, "--once", "--json", env=client_env(port))
    assert res.returncode == 0, res.stderr
    return [json.loads(line)["message"] for line in res.stdout.splitlines()]


def send(port: int, room: str, data: bytes, *flags: str) -> tuple[int, str]:
    """``chatctl send`` with ``data`` piped to its stdin: (status, stderr)."""
    res = subprocess.run(
        [*CHATCTL, "send", room, *flags],
        input=data,
        env=client_env(port, "bob"),
        capture_output=True,
        timeout=30,
        check=False,
    )
    return res.returncode, res.stderr.decode()


def test_whole_sends_stdin_as_one_message(srv: ServeProcess) -> None:
    assert send(srv.port, "whole", TRACEBACK.encode(), "--whole") == (0, "")
    assert stored(srv.port, "whole") == [TRACEBACK.rstrip("\n")]  # the last newline dropped


def test_null_separated_records(srv: ServeProcess) -> None:
    assert send(srv.port, "nul", b"first\nline two\x00second\x00\x00third\n", "-0") == (0, "")
    assert send(srv.port, "nul", b"fourth\x00", "--null") == (0, "")
    assert stored(srv.port, "nul") == ["first\nline two", "second", "third", "fourth"]


def test_blank_lines_separate_paragraphs(srv: ServeProcess) -> None:
    data = b"\xef\xbb\xbfone\r\nstill one\r\n\r\n\n  \ntwo\n\n" + TRACEBACK.encode()
    assert send(srv.port, "para", data, "--paragraphs") == (0, "")
    assert stored(srv.port, "para") == ["one\nstill one", "two", TRACEBACK.rstrip("\n")]


def test_the_size_limit_applies_per_message(srv: ServeProcess) -> None:
    """A block over the server's limit is refused with its number; the others are stored."""
    data = b"short\n\n" + b"x" * 9000 + b"\n\nlast\n"
    status, err = send(srv.port, "big", data, "--paragraphs")
    assert status == 6
    assert err.splitlines()[0] == (
        "chatctl: message 2 not sent: message is 9000 characters; the limit is 8000"
    )
    assert stored(srv.port, "big") == ["short", "last"]
    status, err = send(srv.port, "huge", b"y" * 70000, "--whole")
    assert status == 6
    assert err.splitlines()[0] == (
        "chatctl: message 1 not sent: longer than 65536 bytes (messages are never split)"
    )
    status, err = send(srv.port, "huge", b"z\x00" + b"y" * 70000 + b"\x00w", "-0")
    assert status == 6 and "message 2 not sent: longer than 65536" in err, err
    assert stored(srv.port, "huge") == ["z", "w"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--whole", "text"], "--whole reads stdin: give no TEXT (or -)"),
        (["--whole", "-0"], "--whole and -0 cannot be used together"),
        (["-0", "--paragraphs"], "-0 and --paragraphs cannot be used together"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    res = run_cli("send", "ops", *args, env=client_env(1), input="")
    assert res.returncode == 2
    assert res.stderr == f"chatctl: {message}\n"
