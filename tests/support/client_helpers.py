"""Helpers for the client tests: run the real ``chatctl`` CLI as a subprocess."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from support.helpers import RedisServer, ServeProcess, chatctl_env, make_token

CHATCTL = [sys.executable, "-m", "chatctl"]


def client_env(port: int, user: str = "alice", **extra: str) -> dict[str, str]:
    env = chatctl_env(**{"CHATCTL_SERVER": f"ws://127.0.0.1:{port}", **extra})
    if user:
        env["CHATCTL_TOKEN"] = make_token(user)
    return env


def run_cli(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHATCTL, *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


async def arun_cli(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 30
) -> Result:
    """Run the CLI without blocking the event loop (for tests with an in-process server)."""
    proc = await asyncio.create_subprocess_exec(
        *CHATCTL,
        *args,
        env=env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        proc.communicate(None if input is None else input.encode()), timeout
    )
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@contextmanager
def serving(*args: str, port: int | None = None) -> Iterator[ServeProcess]:
    srv = ServeProcess(*args, port=port).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A private redis-server's URL, for tests of a ``chatctl serve --redis-url`` server.

    Skipped (before redis-server is started) while ``chatctl.broker.redis`` cannot be
    imported: the Redis broker is developed on another branch.
    """
    pytest.importorskip("chatctl.broker.redis")
    redis = RedisServer().start()
    try:
        yield redis.url
    finally:
        redis.cleanup()
