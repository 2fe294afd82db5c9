"""Posting to and reading a room through the ``chatctl`` command line."""

from __future__ import annotations

import json

from support.client_helpers import client_env, run_cli


def say(port: int, room: str, *texts: str, user: str = "bob") -> None:
    res = run_cli("send", room, env=client_env(port, user), input="".join(t + "\n" for t in texts))
    assert res.returncode == 0, res.stderr


def room_texts(port: int, room: str) -> list[str]:
    res = run_cli("join", room, "--json", "--since", "0", "--once", env=client_env(port))
    return [json.loads(line)["message"] for line in res.stdout.splitlines()]
