"""``chatctl serve``'s settings, each declared once (:mod:`chatctl.setting`).

:class:`ServeOptions` is what ``chatctl serve`` was asked for. Each field is one declaration:
its type, its default (read from the :class:`ServerSettings` field it feeds, where it has
one), its help, environment variable, bounds and section. The CLI's flags, ``--help``, the
man page, the completions and the table in docs/configuration.md are built from
:data:`SERVE_SETTINGS` plus the brokers' own options (:func:`all_settings`), and
:func:`server_settings` turns the options into the server's settings through each
declaration's ``target``. Nothing here imports the server, websockets or a broker.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatctl.broker.base import DEFAULT_HISTORY_TTL
from chatctl.log import LogFormat, LogLevel
from chatctl.protocol import DEFAULT_DEDUP_WINDOW
from chatctl.server.settings import ServerSettings
from chatctl.setting import SECTIONS, Setting, declared, setting

_SERVER = ServerSettings()


def _server(path: str, *, also: tuple[str, ...] = (), **more: Any) -> Any:
    """A setting feeding the ServerSettings field ``path`` (and ``also``), whose default is
    that field's."""
    value: Any = _SERVER
    for part in path.split("."):
        value = getattr(value, part)
    return setting(value, target=(path, *also), **more)


def parse_duration(value: str | float) -> float:
    """90s, 15m, 12h, 7d, 1w, or 0 (never), in seconds; ``ValueError`` otherwise."""
    if isinstance(value, int | float):
        return float(value)
    if value.strip() in ("0", "0s"):
        return 0.0
    from chatctl.config import parse_duration as parse

    return parse(value)


def _off_is_none(seconds: float) -> float | None:
    return seconds or None


@dataclass(frozen=True)
class ServeOptions:
    """What ``chatctl serve`` was asked for; see the module docstring."""

    # ---------------------------------------------------------------- Listening
    host: str = _server("host", help="Address to listen on.", section="Listening")
    port: int = _server(
        "port", help="TCP port to listen on.", section="Listening", min=0, max=65535
    )
    certfile: Path | None = _server(
        "certfile",
        help="Serve wss:// with this PEM certificate chain (leaf first).",
        section="Listening",
    )
    keyfile: Path | None = _server(
        "keyfile", help="PEM private key of --certfile (if not in it).", section="Listening"
    )
    allowed_origins: tuple[str, ...] = _server(
        "allowed_origins",
        help="Browser Origin allowed besides the server's own, e.g. https://chat.example.com "
        "or https://*.example.com; '*' allows any (repeatable). Clients that send no "
        "Origin (CLIs) are never refused.",
        section="Listening",
        flag="--allowed-origin",
        metavar="ORIGIN",
    )
    # ---------------------------------------------------------------- Tokens
    secret_file: Path | None = setting(
        None,
        help="HS256 secret file (default: CHATCTL_SECRET, CHATCTL_SECRET_FILE, "
        "then ~/.config/chatctl/secret, created if missing).",
        section="Tokens",
        env="CHATCTL_SECRET_FILE",
    )
    public_key: Path | None = setting(
        None,
        help="Verify RS256/ES256 tokens with this PEM public key instead of a shared secret.",
        section="Tokens",
    )
    revoked_tokens: Path | None = _server(
        "revoked_tokens",
        help="File of revoked token ids ('jti', as token inspect shows them), one a line; read "
        "at start and on SIGHUP (chatctl token revoke needs no file).",
        section="Tokens",
        metavar="FILE",
    )
    issuer: str | None = setting(None, help="Require this token 'iss'.", section="Tokens")
    audience: str | None = setting(None, help="Require this token 'aud'.", section="Tokens")
    # ---------------------------------------------------------------- Storage
    broker: str | None = setting(
        None,
        help="Where rooms are kept: memory:, sqlite:///DIR/, redis://HOST:PORT/DB (also "
        "rediss://, unix://) or redis+cluster://HOST:PORT,HOST:PORT... (default: SQLite in "
        "--data-dir).",
        section="Storage",
        env="CHATCTL_BROKER",
        metavar="URL",
    )
    data_dir: Path | None = setting(
        None,
        help="Keep rooms in DIR/chatctl.db (SQLite; default ~/.local/share/chatctl); "
        "as --broker sqlite:///DIR/.",
        section="Storage",
        env="CHATCTL_DATA_DIR",
        metavar="DIR",
    )
    memory: bool = setting(
        False,
        help="Keep rooms in memory only: history and ids are lost on exit (as --broker memory:).",
        section="Storage",
        switch=True,
    )
    redis_url: str | None = setting(
        None,
        help="Share rooms with other nodes through Redis or a Redis Cluster: as --broker URL.",
        section="Storage",
        env="CHATCTL_REDIS_URL",
    )
    history: int = _server(
        "history_size",
        help="Messages kept per room for history and resume.",
        section="Storage",
        min=1,
    )
    welcome_history: int = _server(
        "welcome_history",
        help="History messages sent on join when the client asks for none.",
        section="Storage",
        min=0,
    )
    history_ttl: float = setting(
        DEFAULT_HISTORY_TTL,
        help="Forget messages older than this, and rooms idle for it (0: never).",
        section="Storage",
        parser=parse_duration,
        metavar="DURATION",
        shown_default="7d",
    )
    dedup_window: float = setting(
        DEFAULT_DEDUP_WINDOW,
        help="Seconds a client id is remembered for de-duplication.",
        section="Storage",
        min=1,
    )
    # ---------------------------------------------------------------- Workers
    workers: int = setting(
        1,
        help="Server processes sharing the port (0: one per core); more than 1 needs a shared "
        "broker (Redis).",
        section="Workers",
        min=0,
    )
    worker_status_port: int | None = setting(
        None,
        help="With --workers: worker K also answers /healthz and /metrics alone on this "
        "port + K - 1.",
        section="Workers",
        min=1,
        max=65535,
    )
    # ---------------------------------------------------------------- Limits
    max_frame: int = _server(
        "max_frame_bytes",
        help="Largest incoming frame in bytes (over it: close 1009).",
        section="Limits",
        min=256,
    )
    max_message: int = _server(
        "max_message_chars",
        help="Longest message in characters (over it: error frame).",
        section="Limits",
        min=1,
    )
    max_pending: int = _server(
        "max_pending_bytes",
        help="Unsent bytes per connection before it is closed as a slow consumer (4008).",
        section="Limits",
        min=1024,
    )
    rate_limit: float = _server(
        "rates.conn_rate",
        help="Frames per second per connection (over it: rate_limited error; 0: no limit).",
        section="Limits",
        min=0,
    )
    rate_burst: float = _server(
        "rates.conn_burst",
        help="Frames a connection may send at once above --rate-limit.",
        section="Limits",
        min=1,
    )
    user_rate_limit: float = _server(
        "rates.user_rate",
        help="Frames per second per user, all its connections on this node.",
        section="Limits",
        min=0,
    )
    user_rate_burst: float = _server(
        "rates.user_burst", help="Burst above --user-rate-limit.", section="Limits", min=1
    )
    max_connections: int = _server(
        "limits.max_connections",
        help="Connections on this node (over it: HTTP 503; 0: no limit).",
        section="Limits",
        min=0,
    )
    max_user_connections: int = _server(
        "limits.max_user_connections",
        help="Connections per user on this node (over it: HTTP 429).",
        section="Limits",
        min=0,
    )
    max_rooms: int = _server(
        "limits.max_rooms",
        help="Rooms with members on this node (over it: HTTP 503).",
        section="Limits",
        min=0,
    )
    max_user_rooms: int = _server(
        "limits.max_user_rooms",
        help="Distinct rooms one user may be in on this node (HTTP 429).",
        section="Limits",
        min=0,
    )
    dms: bool = _server(
        "dms",
        help="Direct messages: conversations of two users at /ws/@USER (--no-dms: 403).",
        section="Limits",
    )
    # ---------------------------------------------------------------- Connections
    ping_interval: float = _server(
        "ping_interval",
        also=("ping_timeout",),
        convert=_off_is_none,
        help="Seconds between keepalive pings (0 turns them off).",
        section="Connections",
        min=0,
    )
    compression: bool = _server(
        "compression",
        help="Offer permessage-deflate (about 50 KiB more memory per connection).",
        section="Connections",
    )
    handshake_timeout: float = _server(
        "handshake_timeout",
        help="Seconds for the TCP+TLS+WebSocket opening handshake.",
        section="Connections",
        min=0.1,
    )
    drain_timeout: float = _server(
        "shutdown_timeout",
        help="Seconds a SIGTERM drain or shutdown may take before aborting.",
        section="Connections",
        min=0,
    )
    # ---------------------------------------------------------------- Logging
    log_level: LogLevel = setting(
        "info",
        help="debug, info, warning or error.",
        section="Logging",
        env="CHATCTL_LOG_LEVEL",
        metavar="LEVEL",
        case_sensitive=False,
    )
    log_format: LogFormat = setting(
        "text", help="json: one JSON object per line.", section="Logging"
    )
    #: the brokers' own options (fsync, redis_prefix…) by setting name: see the registry
    broker_options: Mapping[str, Any] = field(default_factory=dict)


#: the settings ServeOptions declares, in declaration order
SERVE_SETTINGS: tuple[Setting, ...] = declared(ServeOptions, typing.get_type_hints(ServeOptions))


def all_settings() -> tuple[Setting, ...]:
    """Every flag of ``chatctl serve``, grouped by section: ServeOptions' settings, then in
    Storage the options of every registered broker."""
    from chatctl.broker.registry import broker_options

    every = (*SERVE_SETTINGS, *broker_options())
    return tuple(sorted(every, key=lambda s: SECTIONS.index(s.section)))


def options_from(values: Mapping[str, Any]) -> ServeOptions:
    """ServeOptions from every setting's value by name (as the CLI parsed them)."""
    names = {s.name for s in SERVE_SETTINGS}
    own = {k: v for k, v in values.items() if k in names}
    for s in SERVE_SETTINGS:
        if typing.get_origin(s.type) is tuple and s.name in own:
            own[s.name] = tuple(own[s.name] or ())  # a repeatable flag gives a list or None
    extra = {k: v for k, v in values.items() if k not in names}
    return ServeOptions(**own, broker_options=extra)


def server_settings(opts: ServeOptions, *, reuse_port: bool = False) -> ServerSettings:
    """The server's settings ``opts`` describe, each setting written to its targets."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for s in SERVE_SETTINGS:
        value = s.value_for(getattr(opts, s.name))
        for path in s.target:
            head, _, tail = path.partition(".")
            if tail:
                nested.setdefault(head, {})[tail] = value
            else:
                top[head] = value
    for head, values in nested.items():
        top[head] = type(getattr(_SERVER, head))(**values)
    settings = ServerSettings(**top, reuse_port=reuse_port)
    return dataclasses.replace(settings, welcome_history=min(opts.welcome_history, opts.history))
