"""Where a client connects and with which token: flags > environment > config file > defaults.

Shared by ``join``, ``send`` (and later ``bench``). Cheap to import: no jwt, no ssl, no
websockets; the JWT library is loaded only when a token has to be minted from the local
secret (see :func:`resolve_settings`).

Token precedence, first found wins (docs/configuration.md):

1. ``--token VALUE``
2. ``CHATCTL_TOKEN``
3. ``--token-file PATH`` (or ``CHATCTL_TOKEN_FILE``)
4. ``--token -`` (one line read from stdin)
5. ``token`` / ``token_file`` in ``config.toml``
6. on the server's own host only: a short-lived token minted from the secret that
   ``chatctl serve`` uses (announced on stderr)
"""

from __future__ import annotations

import base64
import json
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
from chatctl.protocol import ROOM_RULE, USER_RULE, valid_room, valid_user

#: Lifetime of a token minted from the local secret; a fresh one is minted on every connect.
MINTED_TTL = 600.0
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


@dataclass(frozen=True)
class ClientSettings:
    """Everything needed to open a room connection. ``token()`` is called on every connect."""

    server: str
    token: Callable[[], str]
    token_origin: str
    cafile: Path | None = None
    user_hint: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)

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


def configured_server(server: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The server URL the client commands would use: ``server`` > ``CHATCTL_SERVER`` >
    ``server`` in config.toml > ws://127.0.0.1:8000, normalized."""
    env = os.environ if env is None else env
    path = Path(env["CHATCTL_CONFIG"]) if env.get("CHATCTL_CONFIG") else config_file()
    return _server_url(server, env, load_config_file(path), path)


def _server_url(
    server: str | None, env: Mapping[str, str], config: Mapping[str, Any], path: Path
) -> str:
    return normalize_server(
        server or env.get("CHATCTL_SERVER") or _str(config, "server", path) or DEFAULT_SERVER
    )


def check_room(room: str) -> str:
    if not valid_room(room):
        raise UsageError(f"invalid room name {room!r}: {ROOM_RULE}")
    return room


def is_local_host(server: str) -> bool:
    host = (urlsplit(server).hostname or "").lower()
    if host in LOOPBACK_NAMES or host.startswith("127."):
        return True
    try:
        return host == socket.gethostname().lower()
    except OSError:  # pragma: no cover
        return False


def token_claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT (to name its user in messages), or {} if unreadable."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _read_token_file(path: Path, what: str) -> str:
    try:
        token = path.expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not token:
        raise ConfigError(f"{what} {path} is empty")
    return token


def _static(token: str) -> Callable[[], str]:
    return lambda: token


def resolve_settings(
    *,
    server: str | None = None,
    token: str | None = None,
    token_file: Path | None = None,
    user: str | None = None,
    cafile: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> ClientSettings:
    """Combine flags, ``CHATCTL_*`` variables and ``config.toml`` into :class:`ClientSettings`.

    ``token == "-"`` reads one line from ``stdin``. Raises :class:`UsageError` /
    :class:`ConfigError` for bad values and :class:`AuthError` when no token can be found.
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

    def ignored(flag: str, winner: str) -> None:
        print(f"chatctl: {flag} ignored: {winner} takes precedence", file=stderr)

    token_file = token_file or _path(env.get("CHATCTL_TOKEN_FILE"))
    from_stdin = token == "-"
    chosen: tuple[Callable[[], str], str] | None = None
    if token and not from_stdin:
        chosen = _static(token.strip()), "--token"
    elif env.get("CHATCTL_TOKEN"):
        chosen = _static(env["CHATCTL_TOKEN"].strip()), "CHATCTL_TOKEN"
        for flag, given in (("--token-file", token_file), ("--token -", from_stdin)):
            if given:
                ignored(flag, "CHATCTL_TOKEN")
    elif token_file is not None:
        chosen = _static(_read_token_file(token_file, "token file")), str(token_file)
        if from_stdin:
            ignored("--token -", "--token-file")
    elif from_stdin:
        line = (stdin or sys.stdin).readline().strip()
        if not line:
            raise UsageError("--token -: no token on stdin")
        chosen = _static(line), "stdin"
    elif _str(config, "token", path):
        chosen = _static(_str(config, "token", path) or ""), f"{path} (token)"
    elif _str(config, "token_file", path):
        tf = Path(_str(config, "token_file", path) or "")
        chosen = _static(_read_token_file(tf, "token file")), str(tf)

    if chosen is not None:
        get_token, origin = chosen
        claims = token_claims(get_token())
        sub = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        if user and sub and user != sub:
            print(f"chatctl: --user {user} ignored: the token is for {sub}", file=stderr)
        return ClientSettings(server_url, get_token, origin, ca, sub, config)

    name = user or _str(config, "user", path) or env.get("USER") or env.get("LOGNAME")
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except (OSError, KeyError):  # pragma: no cover - no passwd entry
            name = None
    return _local_fallback(server_url, name, ca, config, stderr)


def _local_fallback(
    server: str, user: str | None, cafile: Path | None, config: Mapping[str, Any], stderr: TextIO
) -> ClientSettings:
    hint = (
        "no token: set CHATCTL_TOKEN, --token-file or token_file in config.toml "
        "(make one with 'chatctl token create --user NAME')"
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

    def mint_token() -> str:
        from chatctl.auth import mint

        return mint(source.secret, user, ttl=MINTED_TTL)

    print(
        f"chatctl: no token given: using a {int(MINTED_TTL // 60)}-minute token for {user} "
        f"signed with the local secret ({source.origin})",
        file=stderr,
    )
    return ClientSettings(server, mint_token, f"minted from {source.origin}", cafile, user, config)


def _str(config: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string")
    return value


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None
