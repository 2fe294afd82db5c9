"""Settings resolution: server URL, token precedence, config file, local fallback token."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from chatctl.auth import Verifier
from chatctl.client.settings import normalize_server, resolve_settings, token_claims
from chatctl.config import config_dir
from chatctl.errors import AuthError, ConfigError, UsageError
from helpers import SECRET, make_token


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ws://h:1", "ws://h:1"),
        ("wss://chat.example.com/", "wss://chat.example.com"),
        ("https://chat.example.com/base", "wss://chat.example.com/base"),
        ("http://h:80", "ws://h:80"),
        ("localhost:8000", "ws://localhost:8000"),
    ],
)
def test_normalize_server(given: str, expected: str) -> None:
    assert normalize_server(given) == expected


@pytest.mark.parametrize("bad", ["ftp://h", "ws://", "ws://h:99999", "ws://[::1", "ws://h?x=1"])
def test_malformed_server_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="malformed server URL"):
        normalize_server(bad)


def write_config(text: str) -> Path:
    path = config_dir() / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_token_precedence(tmp_path: Path) -> None:
    tf = tmp_path / "tok"
    tf.write_text(make_token("file") + "\n")
    write_config(f'token = "{make_token("config")}"\nserver = "ws://cfg:1"\n')
    env = {"CHATCTL_TOKEN": make_token("env")}
    err = io.StringIO()

    def user(**kw: object) -> str | None:
        return resolve_settings(env=kw.pop("env", {}), stderr=err, **kw).user_hint  # type: ignore[arg-type]

    assert user(token=make_token("flag"), env=env, token_file=tf) == "flag"
    assert user(env=env, token_file=tf) == "env"
    assert "--token-file ignored: CHATCTL_TOKEN takes precedence" in err.getvalue()
    assert user(token_file=tf) == "file"
    assert user(token="-", stdin=io.StringIO(make_token("stdin") + "\n")) == "stdin"
    assert user() == "config"
    settings = resolve_settings(env={}, stderr=err)
    assert settings.server == "ws://cfg:1"
    assert resolve_settings(server="ws://flag:2", env={"CHATCTL_SERVER": "x:3"}).server == (
        "ws://flag:2"
    )


def test_config_token_file_and_errors(tmp_path: Path) -> None:
    tf = tmp_path / "t"
    tf.write_text(make_token("carol"))
    write_config(f'token_file = "{tf}"\n')
    assert resolve_settings(env={}).user_hint == "carol"
    write_config("server = 5\n")
    with pytest.raises(ConfigError, match="server must be a string"):
        resolve_settings(env={})
    write_config("server = [\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve_settings(env={})
    write_config("")
    with pytest.raises(ConfigError, match="cannot read token file"):
        resolve_settings(env={}, token_file=tmp_path / "missing", server="ws://h:1")


def test_local_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATCTL_SECRET", SECRET.decode())
    err = io.StringIO()
    settings = resolve_settings(env={"USER": "dave"}, stderr=err, server="ws://localhost:9")
    assert "no token given: using a 10-minute token for dave" in err.getvalue()
    claims = Verifier.hmac(SECRET).verify(settings.token())
    assert claims.user == "dave"
    assert claims.exp is not None and claims.exp - claims.raw["iat"] <= 600
    assert token_claims(settings.token())["sub"] == "dave"


def test_no_token_for_a_remote_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATCTL_SECRET", SECRET.decode())
    with pytest.raises(AuthError, match="no token: set CHATCTL_TOKEN"):
        resolve_settings(env={"USER": "dave"}, server="wss://chat.example.com")


def test_room_url_quotes_parameters() -> None:
    s = resolve_settings(env={"CHATCTL_TOKEN": make_token("a")}, server="ws://h:1/base")
    assert (
        s.room_url("ops", {"since": 5, "epoch": "a b"})
        == "ws://h:1/base/ws/ops?since=5&epoch=a%20b"
    )
