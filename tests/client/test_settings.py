"""Settings resolution: server URL, token precedence, config file, local fallback token."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from chatctl.client.settings import normalize_server, resolve_settings
from chatctl.config import config_dir
from chatctl.errors import AuthError, ConfigError, UsageError
from chatctl.tokens.source import TokenUnavailable, token_claims
from chatctl.tokens.verify import Verifier
from support.helpers import SECRET, make_token


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
    """Flags beat the environment, which beats config.toml (issue 15 item 2: --token-file
    lost to CHATCTL_TOKEN while --token won)."""
    tf = tmp_path / "tok"
    tf.write_text(make_token("file") + "\n")
    write_config(f'token = "{make_token("config")}"\nserver = "ws://cfg:1"\n')
    env = {"CHATCTL_TOKEN": make_token("env")}
    err = io.StringIO()

    def user(**kw: object) -> str | None:
        return resolve_settings(env=kw.pop("env", {}), stderr=err, **kw).user_hint  # type: ignore[arg-type]

    assert user(token=make_token("flag"), env=env) == "flag"
    assert user(env=env, token_file=tf) == "file"
    assert user(env=env, token_command=f"echo {make_token('cmd')}") == "cmd"
    stdin = io.StringIO(make_token("stdin") + "\n")
    assert user(env=env, token="-", stdin=stdin) == "stdin"
    assert err.getvalue() == ""  # a flag winning over the environment is no news
    assert user(env=env) == "env"
    assert user(env={"CHATCTL_TOKEN_FILE": str(tf), "CHATCTL_TOKEN_COMMAND": "false"}) == "file"
    assert "CHATCTL_TOKEN_COMMAND ignored: CHATCTL_TOKEN_FILE takes precedence" in err.getvalue()
    assert user(env={"CHATCTL_TOKEN_COMMAND": f"echo {make_token('envcmd')}"}) == "envcmd"
    assert user() == "config"
    settings = resolve_settings(env={}, stderr=err)
    assert settings.server == "ws://cfg:1"
    assert settings.token.origin == f"token in {config_dir() / 'config.toml'}"
    assert resolve_settings(server="ws://flag:2", env={"CHATCTL_SERVER": "x:3"}).server == (
        "ws://flag:2"
    )
    with pytest.raises(UsageError, match="--token and --token-file both name a token"):
        resolve_settings(env={}, token="x", token_file=tf)


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
    with pytest.raises(TokenUnavailable, match="cannot read token file"):
        resolve_settings(env={}, token_file=tmp_path / "missing", server="ws://h:1")


def test_sources_are_read_again(tmp_path: Path) -> None:
    """refresh() reads a file, a command and config.toml again; fixed values say why not."""
    tf = tmp_path / "tok"
    tf.write_text(make_token("a1"))
    source = resolve_settings(env={}, token_file=tf).token
    tf.write_text(make_token("a2", ttl=7200))
    assert source.get().sub == "a1" and source.refresh().sub == "a2"
    assert source.renewable and source.current is not None and source.current.sub == "a2"

    counter = tmp_path / "n"
    counter.write_text("")
    command = f"echo x >> {counter}; echo {make_token('cmd')}"
    source = resolve_settings(env={}, token_command=command).token
    source.refresh()
    assert counter.read_text().count("x") == 2  # once at start-up, once more now

    write_config(f'token = "{make_token("c1")}"\n')
    source = resolve_settings(env={}).token
    write_config(f'token_command = "echo {make_token("c2")}"\n')
    assert source.refresh().sub == "c2"

    fixed = resolve_settings(env={"CHATCTL_TOKEN": make_token("f")}).token
    assert not fixed.renewable and fixed.fixed is not None and "CHATCTL_TOKEN" in fixed.fixed
    stdin = resolve_settings(env={}, token="-", stdin=io.StringIO(make_token("s"))).token
    assert stdin.fixed == "--token - is read once from stdin"


def test_token_command_failures_show_its_stderr() -> None:
    with pytest.raises(TokenUnavailable, match=r"exit status 3\): vault: sealed"):
        resolve_settings(env={}, token_command="echo 'vault: sealed' >&2; exit 3")
    with pytest.raises(TokenUnavailable, match="printed no token"):
        resolve_settings(env={}, token_command="true")
    with pytest.raises(TokenUnavailable, match="not a token"):
        resolve_settings(env={}, token_command="echo two words")


def test_local_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATCTL_SECRET", SECRET.decode())
    err = io.StringIO()
    settings = resolve_settings(env={"USER": "dave"}, stderr=err, server="ws://localhost:9")
    assert "no token given: using a 10-minute token for dave" in err.getvalue()
    claims = Verifier.hmac(SECRET).verify(settings.token.get().value)
    assert claims.user == "dave"
    assert claims.exp is not None and claims.exp - claims.raw["iat"] <= 600
    assert token_claims(settings.token.refresh().value)["sub"] == "dave"


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
