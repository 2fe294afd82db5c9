"""The token's permissions (issue 26, part 3): ``rooms`` read and write, ``read_rooms`` read
only, ``admin``, and the ``jti`` every token now has; what ``token create`` writes and
``token inspect`` shows."""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
import pytest

from chatctl.errors import TokenError
from chatctl.tokens.claims import Claims
from support.helpers import SECRET, chatctl_env, make_token, verifier


def claims(token: str) -> Claims:
    return verifier().verify(token)


def test_read_rooms_are_read_but_not_written() -> None:
    c = claims(make_token("eve", rooms=["*"], read_rooms=["news", "ann-*"]))
    assert c.allows("news") and not c.writes("news")
    assert c.allows("ann-1") and not c.writes("ann-1")
    assert c.allows("general") and c.writes("general")


def test_read_rooms_alone_read_those_rooms_and_nothing_else() -> None:
    token = make_token("eve", read_rooms=["news"])
    assert jwt.decode(token, options={"verify_signature": False})["rooms"] == []
    c = claims(token)
    assert c.allows("news") and not c.writes("news")
    assert not c.allows("general") and not c.writes("general")


def test_a_token_without_read_rooms_writes_what_it_reads() -> None:
    c = claims(make_token("bob", rooms=["ops"]))
    assert c.read_rooms == () and c.writes("ops") and not c.allows("dev")
    everything = claims(make_token("bob"))
    assert everything.rooms is None and everything.writes("anything")


def test_every_minted_token_has_its_own_jti_and_iat() -> None:
    a, b = claims(make_token("alice")), claims(make_token("alice"))
    assert a.jti and b.jti and a.jti != b.jti and len(a.jti) == 16
    assert a.iat is not None and not a.admin
    assert claims(make_token("root", admin=True)).admin


def test_the_claims_a_server_keeps_are_slim() -> None:
    c = claims(make_token("eve", read_rooms=["news"]))
    slim = c.slim()
    assert slim.raw == {} and (slim.jti, slim.iat, slim.read_rooms) == (c.jti, c.iat, c.read_rooms)
    assert not hasattr(slim, "__dict__")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"read_rooms": "news"}, "read_rooms claim must be a list"),
        ({"read_rooms": [1]}, "read_rooms claim must be a list"),
        ({"admin": "yes"}, "admin claim must be true or false"),
        ({"jti": 7}, "JWT ID must be a string"),  # pyjwt's own check
        ({"iat": "noon"}, r"Issued At claim \(iat\) must be"),
        ({"iat": 1e400}, "iat"),
    ],
)
def test_malformed_permission_claims_are_refused(extra: dict[str, object], reason: str) -> None:
    import time

    token = jwt.encode({"sub": "eve", "exp": time.time() + 60, **extra}, SECRET)
    with pytest.raises(TokenError, match=reason):
        verifier().verify(token)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = chatctl_env(HOME=os.environ.get("HOME", "/tmp"))
    return subprocess.run(
        [sys.executable, "-m", "chatctl", "token", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_token_create_read_room_and_admin_and_inspect_shows_them() -> None:
    made = _cli("create", "--user", "eve", "--room", "ops", "--read-room", "news", "--admin")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert payload["rooms"] == ["ops"] and payload["read_rooms"] == ["news"]
    assert payload["admin"] is True and isinstance(payload["jti"], str)
    shown = _cli("inspect", token)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "read and write: ops" in lines and "read only: news" in lines
    assert "admin: yes (POST /api/revoke)" in lines and f"id: {payload['jti']}" in lines


def test_token_create_refuses_a_read_room_that_matches_no_room() -> None:
    made = _cli("create", "--user", "eve", "--read-room", "../x")
    assert made.returncode == 2 and made.stderr.count("\n") == 1
    assert "matches no room" in made.stderr
