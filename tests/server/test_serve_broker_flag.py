"""``chatctl serve --broker URL`` and its aliases --memory, --redis-url and --data-dir: the
same broker whichever is used, one stderr line and status 2 when two disagree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatctl.server.assemble import broker_url
from chatctl.server.options import ServeOptions
from support.helpers import ServeProcess, chatctl_env


def test_aliases_choose_what_broker_chooses(tmp_path: Path) -> None:
    assert broker_url(ServeOptions(memory=True)) == broker_url(ServeOptions(broker="memory:"))
    url = "redis://127.0.0.1:1/0"
    assert broker_url(ServeOptions(redis_url=url)) == broker_url(ServeOptions(broker=url)) == url
    assert broker_url(ServeOptions(data_dir=tmp_path)) == f"sqlite://{tmp_path}/"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--broker", "memory:", "--memory"], "--broker and --memory exclude each other"),
        (["--broker", "memory:", "--redis-url", "redis://h/0"], "--broker and --redis-url"),
        (["--memory", "--redis-url", "redis://h/0"], "--redis-url and --memory"),
        (["--memory", "--data-dir", "DIR"], "--data-dir and --memory"),
        (["--broker", "sqlite:///x/", "--data-dir", "DIR"], "--data-dir and --broker"),
        (["--broker", "bogus://x"], "unsupported broker URL scheme 'bogus'"),
        (["--workers", "2", "--broker", "memory:"], "--workers needs --redis-url or a --broker"),
    ],
)
def test_conflicting_choices_are_one_line_and_status_2(
    args: list[str], says: str, tmp_path: Path
) -> None:
    args = [str(tmp_path) if a == "DIR" else a for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "chatctl", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        env=chatctl_env(CHATCTL_DATA_DIR=str(tmp_path)),
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("chatctl: ") and says in line, line


def test_broker_flag_beats_the_aliases_environment(tmp_path: Path) -> None:
    """CHATCTL_REDIS_URL on the host does not stop ``--broker memory:`` on the command line."""
    env = chatctl_env(CHATCTL_REDIS_URL="redis://127.0.0.1:1/0")
    server = ServeProcess("--broker", "memory:", env=env, data_dir=tmp_path).start()
    try:
        log = server.read_log()
        assert "rooms are kept in memory only" in log and "(broker: memory," in log
    finally:
        server.stop()


def test_broker_flag_with_a_sqlite_url(tmp_path: Path) -> None:
    server = ServeProcess("--broker", f"sqlite://{tmp_path}/rooms/").start()
    try:
        assert f"rooms are kept in {tmp_path}/rooms/chatctl.db" in server.read_log()
        assert "(broker: sqlite," in server.read_log()
    finally:
        server.stop()
