"""The moderator claim (issue 26, part 4): ``mod``, globs of the rooms where the user
moderates; written by ``token create --mod``, shown by ``token inspect``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import jwt
import pytest

from chatctl.errors import TokenError
from support.helpers import SECRET, chatctl_env, make_token, verifier


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = chatctl_env(HOME=os.environ.get("HOME", "/tmp"))
    return subprocess.run(
        [sys.executable, "-m", "chatctl", "token", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_mod_globs_choose_the_rooms_and_never_a_conversation() -> None:
    c = verifier().verify(make_token("mia", mod_rooms=["team-*", "ops"]))
    assert c.mod_rooms == ("team-*", "ops")
    assert c.moderates("team-a") and c.moderates("ops") and not c.moderates("general")
    everywhere = verifier().verify(make_token("mia", mod_rooms=["*"]))
    assert everywhere.moderates("general")
    assert not everywhere.moderates("+dm+alice+bob") and not everywhere.moderates("+inbox+bob")
    assert not verifier().verify(make_token("bob")).moderates("general")
    assert everywhere.slim().mod_rooms == ("*",)


@pytest.mark.parametrize("bad", ["*", [1], {"a": 1}, True])
def test_a_malformed_mod_claim_is_refused(bad: object) -> None:
    token = jwt.encode({"sub": "eve", "exp": time.time() + 60, "mod": bad}, SECRET)
    with pytest.raises(TokenError, match="mod claim must be a list of room patterns"):
        verifier().verify(token)


def test_token_create_mod_and_inspect_show_it() -> None:
    made = _cli("create", "--user", "mia", "--mod", "team-*", "--mod", "ops")
    assert made.returncode == 0, made.stderr
    payload = jwt.decode(made.stdout.strip(), SECRET, algorithms=["HS256"])
    assert payload["mod"] == ["team-*", "ops"] and "rooms" not in payload
    shown = _cli("inspect", made.stdout.strip())
    assert "moderates: team-*, ops" in shown.stdout.splitlines()
    every = _cli("inspect", _cli("create", "--user", "mia", "--mod", "*").stdout.strip())
    assert "moderates: every room" in every.stdout.splitlines()
    bad = _cli("create", "--user", "mia", "--mod", "../x")
    assert bad.returncode == 2 and "matches no room" in bad.stderr
    hook = _cli("create", "--user", "h", "--room", "alerts", "--webhook", "--mod", "*")
    assert hook.returncode == 2 and "--mod" in hook.stderr
