"""``chatctl history ROOM`` as a script runs it: real servers, real ``chatctl history``
processes, every option, and the exit statuses."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from chatctl.broker.memory import MemoryBroker
from chatctl.server import ChatServer, ServerSettings
from chatctl.server.limits import RateSettings
from support.client_helpers import CHATCTL, arun_cli, client_env, run_cli, serving
from support.helpers import free_port, make_server, make_token, verifier

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)")


def texts(stdout: str) -> list[str]:
    """What each printed line says after its date and time."""
    out = []
    for line in stdout.splitlines():
        m = LINE.fullmatch(line)
        assert m is not None, line
        out.append(m[1])
    return out


async def post(srv: ChatServer, room: str, user: str, *lines: str) -> None:
    for line in lines:
        await srv.broker.publish(room, user, line)


async def history(srv: ChatServer, *args: str, user: str = "alice") -> tuple[int, str, str]:
    res = await arun_cli("history", *args, env=client_env(srv.port, user))
    return res.returncode, res.stdout, res.stderr


async def test_newest_messages_oldest_first_as_sanitised_lines(server: ChatServer) -> None:
    await post(server, "ops", "bob", "one", "two", "three\nlines\x1b[2J")
    await server.broker.publish("ops", "bob", "waves", kind="action")
    status, out, err = await history(server, "ops", "--limit", "3")
    assert (status, err) == (0, "")
    assert texts(out) == ["bob: two", "bob: three\\nlines", "* bob waves"]
    status, out, _ = await history(server, "#ops")  # default limit 100, '#' dropped
    assert status == 0 and texts(out)[0] == "bob: one" and len(texts(out)) == 4


async def test_pages_back_through_more_than_one_page(server: ChatServer) -> None:
    await post(server, "big", "bob", *(f"m{i}" for i in range(1, 451)))
    status, out, _ = await history(server, "big", "--limit", "0")
    assert status == 0 and texts(out) == [f"bob: m{i}" for i in range(1, 451)]
    status, out, _ = await history(server, "big", "--limit", "250")
    assert status == 0 and texts(out) == [f"bob: m{i}" for i in range(201, 451)]


async def test_json_lines_are_message_frames_with_the_epoch(server: ChatServer) -> None:
    await post(server, "ops", "bob", "one", "two", "three")
    status, out, _ = await history(server, "ops", "--json")
    frames = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [(f["type"], f["id"], f["message"]) for f in frames] == [
        ("message", 1, "one"),
        ("message", 2, "two"),
        ("message", 3, "three"),
    ]
    epoch = frames[0]["epoch"]
    assert epoch and {"room", "user", "ts", "kind"} <= frames[0].keys()
    status, out, _ = await history(server, "ops", "--json", "--since", f"1@{epoch}")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [2, 3]


async def test_since_and_until_ids(server: ChatServer) -> None:
    await post(server, "ops", "bob", *(f"m{i}" for i in range(1, 11)))
    status, out, _ = await history(server, "ops", "--since", "7")
    assert status == 0 and texts(out) == ["bob: m8", "bob: m9", "bob: m10"]
    status, out, _ = await history(server, "ops", "--until", "3")
    assert texts(out) == ["bob: m1", "bob: m2", "bob: m3"]
    status, out, _ = await history(server, "ops", "--since", "4", "--until", "6")
    assert texts(out) == ["bob: m5", "bob: m6"]
    status, out, _ = await history(server, "ops", "--since", "2", "--until", "9", "--limit", "2")
    assert texts(out) == ["bob: m8", "bob: m9"]  # the newest two of the stretch


async def test_ids_of_another_epoch(server: ChatServer) -> None:
    await post(server, "ops", "bob", "one", "two")
    status, out, err = await history(server, "ops", "--since", "5@0ldepoch")
    assert status == 0 and texts(out) == ["bob: one", "bob: two"]
    assert "ops lost its history since epoch 0ldepoch" in err and err.count("\n") == 1
    status, out, err = await history(server, "ops", "--until", "5@0ldepoch")
    assert (status, out) == (0, "") and "--until 5@0ldepoch is before every message" in err


async def test_messages_no_longer_kept_after_since_are_noticed() -> None:
    srv = ChatServer(
        ServerSettings(port=0, history_size=3), verifier(), MemoryBroker(history_size=3)
    )
    async with srv:
        await post(srv, "ops", "bob", *(f"m{i}" for i in range(1, 7)))
        status, out, err = await history(srv, "ops", "--since", "1")
    assert status == 0 and texts(out) == ["bob: m4", "bob: m5", "bob: m6"]
    assert err == (
        "chatctl: missed messages: the server no longer keeps every message of ops after #1 "
        "(its oldest is #4)\n"
    )


async def test_user_and_grep_filter_before_the_limit(server: ChatServer) -> None:
    for i in range(1, 9):
        await post(server, "ops", "alice" if i % 2 else "bob", f"deploy {i}" if i > 2 else "hi")
    status, out, _ = await history(server, "ops", "--user", "alice", "--limit", "2")
    assert status == 0 and texts(out) == ["alice: deploy 5", "alice: deploy 7"]
    status, out, _ = await history(server, "ops", "-u", "alice", "-u", "bob", "--grep", "^hi$")
    assert texts(out) == ["alice: hi", "bob: hi"]
    status, out, _ = await history(server, "ops", "--grep", r"(?i)DEPLOY [34]")
    assert texts(out) == ["alice: deploy 3", "bob: deploy 4"]
    status, out, err = await history(server, "ops", "--user", "nobody")
    assert (status, out, err) == (0, "", "")


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[ChatServer, list[float]]]:
    """A server whose broker stamps messages with the time the test puts in ``now[0]``."""
    now = [time.time()]
    broker = MemoryBroker(clock=lambda: now[0])
    srv = ChatServer(ServerSettings(port=0), verifier(), broker)
    async with srv:
        yield srv, now


async def test_since_and_until_times(clocked: tuple[ChatServer, list[float]]) -> None:
    srv, now = clocked
    start = time.time()
    for ago, text in ((7200, "two hours ago"), (1800, "half an hour ago"), (60, "a minute ago")):
        now[0] = start - ago
        await post(srv, "ops", "bob", text)
    status, out, _ = await history(srv, "ops", "--since", "1h")
    assert status == 0 and texts(out) == ["bob: half an hour ago", "bob: a minute ago"]
    status, out, _ = await history(srv, "ops", "--until", "10m")
    assert texts(out) == ["bob: two hours ago", "bob: half an hour ago"]
    status, out, _ = await history(srv, "ops", "--since", "2h30m", "--until", "1h")
    assert texts(out) == ["bob: two hours ago"]
    iso = datetime.fromtimestamp(start - 3600).isoformat(timespec="seconds")  # local time
    status, out, _ = await history(srv, "ops", "--since", iso)
    assert texts(out) == ["bob: half an hour ago", "bob: a minute ago"]
    utc = datetime.fromtimestamp(start - 900).astimezone().isoformat()  # with its offset
    status, out, _ = await history(srv, "ops", "--until", utc)
    assert texts(out) == ["bob: two hours ago", "bob: half an hour ago"]
    today = datetime.fromtimestamp(start + 86400 * 2).date().isoformat()
    status, out, _ = await history(srv, "ops", "--until", today, "--limit", "1")
    assert texts(out) == ["bob: a minute ago"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--since", "yesterdayy"], "--since 'yesterdayy': expected ID, ID@EPOCH, a duration"),
        (["--until", "3@no/epoch"], "--until '3@no/epoch': the epoch is 1-64 characters"),
        (["--since", "1x"], "--since '1x': expected ID"),
        (["--grep", "("], "--grep '(': not a regular expression"),
        (["--limit", "-1"], "Invalid value for '--limit'"),
        (["--limit", "many"], "Invalid value for '--limit'"),
        (["--nope"], "No such option: --nope"),
    ],
)
def test_bad_input_is_status_2_with_one_line(args: list[str], says: str) -> None:
    res = run_cli("history", "ops", *args, env=client_env(free_port()))
    assert res.returncode == 2 and res.stdout == ""
    assert says in res.stderr and res.stderr.count("\n") == 1, res.stderr


def test_a_bad_room_name_is_status_2() -> None:
    res = run_cli("history", "no room", env=client_env(free_port()))
    assert res.returncode == 2 and "invalid room name 'no room'" in res.stderr


def test_unreachable_server_is_status_4_within_timeout() -> None:
    port = free_port()
    started = time.monotonic()
    res = run_cli("history", "ops", "--timeout", "1", env=client_env(port))
    assert res.returncode == 4 and time.monotonic() - started < 10
    assert (
        res.stderr
        == f"chatctl: cannot connect to ws://127.0.0.1:{port}/ws/ops: connection refused\n"
    )


async def test_refused_token_or_room_is_status_3(server: ChatServer) -> None:
    env = client_env(server.port, "", CHATCTL_TOKEN="not-a-token")
    res = await arun_cli("history", "ops", env=env)
    assert res.returncode == 3 and res.stderr.startswith("chatctl: authentication failed")
    env = client_env(server.port, "", CHATCTL_TOKEN=make_token("alice", rooms=["other"]))
    res = await arun_cli("history", "ops", env=env)
    assert res.returncode == 3 and "no permission for room ops" in res.stderr


def test_a_reader_gone_is_status_141_and_a_full_disk_7() -> None:
    with serving() as srv:
        env = client_env(srv.port, "bob")
        lines = "".join(f"m{i}\n" for i in range(50))
        assert run_cli("send", "ops", env=env, input=lines).returncode == 0
        gone = subprocess.Popen(
            [*CHATCTL, "history", "ops"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert gone.stdout is not None
        gone.stdout.close()  # the reader leaves before anything is printed
        _, err = gone.communicate(timeout=30)
        assert (gone.returncode, err) == (141, b"")
        with open("/dev/full", "w") as full:
            res = subprocess.run(
                [*CHATCTL, "history", "ops"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=full,
                stderr=subprocess.PIPE,
                timeout=30,
            )
        assert res.returncode == 7 and b"cannot write to stdout" in res.stderr


def test_against_a_chatctl_serve_process() -> None:
    with serving() as srv:
        env = client_env(srv.port, "bob")
        sent = run_cli("send", "ops", "hello from a script", env=env)
        assert sent.returncode == 0, sent.stderr
        res = run_cli("history", "ops", "--json", env=client_env(srv.port, "carol"))
        assert res.returncode == 0, res.stderr
        (frame,) = [json.loads(line) for line in res.stdout.splitlines()]
        assert (frame["user"], frame["message"]) == ("bob", "hello from a script")


async def test_a_rate_limited_request_is_asked_again() -> None:
    """Three pages at one frame per second with no burst to spare: the refused requests
    are asked again after retry_after, and nothing is missing or repeated."""
    srv = make_server(rates=RateSettings(conn_rate=1, conn_burst=1, abuse_burst=1000))
    async with srv:
        await post(srv, "big", "bob", *(f"m{i}" for i in range(1, 451)))
        status, out, err = await history(srv, "big", "--limit", "0")
    assert (status, err) == (0, "")
    assert texts(out) == [f"bob: m{i}" for i in range(1, 451)]
