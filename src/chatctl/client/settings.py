"""Where a client connects and with which token: flags > environment > config file > defaults.

Shared by ``join``, ``send`` (and later ``bench``). Cheap to import: no jwt, no ssl, no
websockets; the JWT library is loaded only when a token has to be minted from the local
secret (see :func:`resolve_settings`).

The token comes from a :class:`~chatctl.tokens.source.TokenSource`, read again at
every reconnect and before the token expires. First found wins (docs/configuration.md):

1. a flag: ``--token VALUE``, ``--token -`` (one line of stdin), ``--token-file PATH`` or
   ``--token-command CMD`` (two of them are a usage error)
2. the environment: ``CHATCTL_TOKEN``, then ``CHATCTL_TOKEN_FILE``, then
   ``CHATCTL_TOKEN_COMMAND``
3. ``token``, ``token_file`` or ``token_command`` in ``config.toml`` (read again at each
   renewal)
4. on the server's own host only: a short-lived token minted from the secret that
   ``chatctl serve`` uses (announced on stderr), a new one for every connection
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode, urlsplit

from chatctl.config import DEFAULT_SERVER, config_file, load_config_file
from chatctl.errors import AuthError, ConfigError, UsageError
from chatctl.protocol import (
    ROOM_RULE,
    USER_RULE,
    conversation_peer,
    is_conversation,
    valid_room,
    valid_user,
)
from chatctl.tokens.source import (
    TokenSource,
    TokenUnavailable,
    command_source,
    file_source,
    fixed_source,
    read_token_file,
    run_token_command,
)

#: Lifetime of a token minted from the local secret; a fresh one is minted on every connect.
MINTED_TTL = 600.0
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


@dataclass(frozen=True)
class ClientSettings:
    """Everything needed to open a room connection. ``token`` is read again at every
    reconnect and before the token expires (:class:`TokenSource`)."""

    server: str
    token: TokenSource
    cafile: Path | None = None
    user_hint: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def token_origin(self) -> str:
        return self.token.origin

    def room_url(self, room: str, params: Mapping[str, object] | None = None) -> str:
        url = f"{self.server}/ws/{quote(room, safe='')}"
        if params:
            url += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())
        return url


def normalize_server(value: str) -> str:
    """``host:port`` -> ``ws://host:port``; ``http(s)://`` -> ``ws(s)://``; no trailing slash.

    Raises :class:`UsageError` for anything that is not a ws:// or wss:// URL with a host.
    """
    text = value.strip()
    if "://" not in text:
        text = "ws://" + text
    scheme, _, rest = text.partition("://")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme.lower())
    text = f"{scheme}://{rest}".rstrip("/")
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"malformed server URL {value!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise UsageError(f"malformed server URL {value!r}: use ws://HOST:PORT or wss://HOST")
    if not parts.hostname or parts.query or parts.fragment or " " in text:
        raise UsageError(f"malformed server URL {value!r}: expected ws://HOST[:PORT][/PATH]")
    return text


def page_link(server: str, token: str, room: str | None = None) -> str:
    """The web page's join link for ``server`` (a normalized ws:// or wss:// URL):
    ``http(s)://HOST:PORT[/PATH]/#token=TOKEN&room=ROOM``.

    The token and room travel in the fragment, which browsers never send to the server.
    """
    scheme, _, rest = server.partition("://")
    fragment = urlencode({"token": token, **({"room": room} if room else {})})
    return f"{'https' if scheme == 'wss' else 'http'}://{rest.rstrip('/')}/#{fragment}"


def hook_url(token: str, *, server: str | None = None) -> str:
    """The incoming-webhook URL of a webhook token on the server the client settings point at:
    ``http(s)://HOST:PORT[/PATH]/hooks/TOKEN``."""
    scheme, _, rest = configured_server(server).partition("://")
    return f"{'https' if scheme == 'wss' else 'http'}://{rest.rstrip('/')}/hooks/{token}"


def configured_server(server: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The server URL the client commands would use: ``server`` > ``CHATCTL_SERVER`` >
    ``server`` in config.toml > ws://127.0.0.1:8000, normalized."""
    env = os.environ if env is None else env
    path = Path(env["CHATCTL_CONFIG"]) if env.get("CHATCTL_CONFIG") else config_file()
    return _server_url(server, env, load_config_file(path), path)


def join_link(token: str, rooms: list[str], *, server: str | None = None) -> str:
    """The web page link that opens the first of ``rooms`` that is a room name, not a glob
    (``team-*``), on the server the client settings point at (``--server``,
    ``CHATCTL_SERVER``, config.toml)."""
    room = next((r for r in rooms if valid_room(r)), None)
    return page_link(configured_server(server), token, room)


def _server_url(
    server: str | None, env: Mapping[str, str], config: Mapping[str, Any], path: Path
) -> str:
    return normalize_server(
        server or env.get("CHATCTL_SERVER") or _str(config, "server", path) or DEFAULT_SERVER
    )


def check_room(room: str) -> str:
    """``room`` as the server names it: one leading ``#`` is dropped (``chatctl join
    '#general'``, as ``/join #general``); ``@USER`` is the direct conversation with USER;
    an invalid name is a usage error."""
    if is_conversation(room):
        try:
            conversation_peer(room)
        except ValueError as exc:
            raise UsageError(f"{room!r}: {exc}") from None
        return room
    name = room.removeprefix("#")
    if not valid_room(name):
        raise UsageError(f"invalid room name {room!r}: {ROOM_RULE}")
    return name


def is_local_host(server: str) -> bool:
    host = (urlsplit(server).hostname or "").lower()
    if host in LOOPBACK_NAMES or host.startswith("127."):
        return True
    try:
        return host == socket.gethostname().lower()
    except OSError:  # pragma: no cover
        return False


def resolve_settings(
    *,
    server: str | None = None,
    token: str | None = None,
    token_file: Path | None = None,
    token_command: str | None = None,
    user: str | None = None,
    cafile: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> ClientSettings:
    """Combine flags, ``CHATCTL_*`` variables and ``config.toml`` into :class:`ClientSettings`.

    ``token == "-"`` reads one line from ``stdin``. Raises :class:`UsageError` /
    :class:`ConfigError` for bad values and :class:`AuthError` when no token can be found
    (or its source cannot be read).
    """
    env = os.environ if env is None else env
    stderr = sys.stderr if stderr is None else stderr
    path = Path(env["CHATCTL_CONFIG"]) if env.get("CHATCTL_CONFIG") else config_file()
    config = load_config_file(path)
    if not isinstance(config.get("join", {}), dict):
        raise ConfigError(f"{path}: [join] must be a table")

    server_url = _server_url(server, env, config, path)
    ca = cafile or _path(env.get("CHATCTL_CAFILE")) or _path(_str(config, "cafile", path))
    if ca is not None and not ca.expanduser().is_file():
        raise ConfigError(f"CA file {ca} does not exist")

    def ignored(name: str, winner: str) -> None:
        print(f"chatctl: {name} ignored: {winner} takes precedence", file=stderr)

    source = _flag_source(token, token_file, token_command, stdin)
    if source is None:
        source = _env_source(env, ignored)
    entry = None if source is not None else _config_token(config, path, ignored)
    if entry is not None:
        source = TokenSource(lambda: _read_config_token(path), f"{entry[0]} in {path}")
    if source is not None:
        sub = source.get().sub
        if user and sub and user != sub:
            print(f"chatctl: --user {user} ignored: the token is for {sub}", file=stderr)
        return ClientSettings(server_url, source, ca, sub, config)

    name = user or _str(config, "user", path) or env.get("USER") or env.get("LOGNAME")
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # pragma: no cover - no passwd entry
            name = None
    return _local_fallback(server_url, name, ca, config, stderr)


def _flag_source(
    token: str | None, token_file: Path | None, token_command: str | None, stdin: TextIO | None
) -> TokenSource | None:
    """The token the command line names (at most one of its token flags)."""
    given = [
        flag
        for flag, value in (
            ("--token", token),
            ("--token-file", token_file),
            ("--token-command", token_command),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} both name a token: give one")
    if token == "-":
        line = (stdin or sys.stdin).readline().strip()
        if not line:
            raise UsageError("--token -: no token on stdin")
        return fixed_source(line, "--token -", why="--token - is read once from stdin")
    if token is not None:
        if not token.strip():
            raise UsageError("--token: empty token")
        return fixed_source(token.strip(), "--token")
    if token_file is not None:
        source = file_source(token_file, f"--token-file {token_file}")
        source.get()  # unreadable: say so now
        return source
    if token_command is not None:
        if not token_command.strip():
            raise UsageError("--token-command: empty command")
        return command_source(token_command, "--token-command")
    return None


def _env_source(env: Mapping[str, str], ignored: Callable[[str, str], None]) -> TokenSource | None:
    """The token the environment names: CHATCTL_TOKEN > _FILE > _COMMAND."""
    names = [n for n in ENV_TOKEN_VARIABLES if env.get(n, "").strip()]
    if not names:
        return None
    for other in names[1:]:
        ignored(other, names[0])
    name, value = names[0], env[names[0]].strip()
    if name == "CHATCTL_TOKEN":
        return fixed_source(value, name)
    if name == "CHATCTL_TOKEN_FILE":
        path = Path(value).expanduser()
        source = file_source(path, f"{name} ({path})")
        source.get()
        return source
    return command_source(value, name)


#: The token variables, strongest first.
ENV_TOKEN_VARIABLES = ("CHATCTL_TOKEN", "CHATCTL_TOKEN_FILE", "CHATCTL_TOKEN_COMMAND")
#: The config.toml token keys, strongest first.
CONFIG_TOKEN_KEYS = ("token", "token_file", "token_command")


def _config_token(
    config: Mapping[str, Any], path: Path, ignored: Callable[[str, str], None] | None = None
) -> tuple[str, str] | None:
    """The strongest of config.toml's token keys that is set, as ``(key, value)``."""
    found = [(k, v) for k in CONFIG_TOKEN_KEYS if (v := _str(config, k, path))]
    if not found:
        return None
    if ignored is not None:
        for key, _ in found[1:]:
            ignored(f"{key} in {path}", found[0][0])
    return found[0]


def _read_config_token(path: Path) -> str:
    """Read config.toml again and the token it names now (so editing it renews the token)."""
    entry = _config_token(load_config_file(path), path)
    if entry is None:
        raise TokenUnavailable(f"{path} names no token any more")
    key, value = entry
    if key == "token":
        return value
    if key == "token_file":
        return read_token_file(Path(value), f"token file {value} (from {path})")
    return run_token_command(value)


def _local_fallback(
    server: str, user: str | None, cafile: Path | None, config: Mapping[str, Any], stderr: TextIO
) -> ClientSettings:
    hint = (
        "no token: set CHATCTL_TOKEN, --token-file, --token-command or token_file in "
        "config.toml (make one with 'chatctl token create --user NAME')"
    )
    if not is_local_host(server):
        raise AuthError(hint)
    from chatctl.config import resolve_secret

    source = resolve_secret()
    if source is None:
        raise AuthError(hint)
    if not user or not valid_user(user):
        raise UsageError(
            f"no token, and no valid user name to mint one for: --user NAME ({USER_RULE})"
        )
    name = user

    def mint_token() -> str:
        from chatctl.tokens.mint import mint

        # the secret is read again each time: a rotated secret file is picked up
        secret = resolve_secret() or source
        return mint(secret.secret, name, ttl=MINTED_TTL)

    print(
        f"chatctl: no token given: using a {int(MINTED_TTL // 60)}-minute token for {user} "
        f"signed with the local secret ({source.origin})",
        file=stderr,
    )
    tokens = TokenSource(mint_token, f"minted from {source.origin}")
    return ClientSettings(server, tokens, cafile, user, config)


def _str(config: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string")
    return value


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None
