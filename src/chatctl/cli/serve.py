"""``chatctl serve``: its flags; the server is built and run by :mod:`chatctl.serve`.

Every default shown here is read from :class:`~chatctl.serve.ServeOptions` (as ``DEFAULTS``),
which takes it from the server setting it feeds: each is written once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chatctl.cli.options import command_app
from chatctl.log import LogFormat, LogLevel
from chatctl.serve import ServeOptions, run_serve

DEFAULTS = ServeOptions()

SERVE_EPILOG = """\
Examples:

  chatctl serve                        # rooms kept in ~/.local/share/chatctl
  chatctl serve --memory               # nothing written to disk, lost on exit
  chatctl serve --host 0.0.0.0 --data-dir /var/lib/chatctl --history-ttl 30d
  chatctl serve --redis-url redis://10.0.0.5:6379/0   # one of several nodes
  chatctl serve --workers 0 --redis-url redis://10.0.0.5:6379/0   # every core
  chatctl serve --redis-url redis+cluster://10.0.0.5:7000,10.0.0.6:7000
  chatctl serve --port 443 --certfile cert.pem --keyfile key.pem   # wss://
  chatctl serve --allowed-origin https://chat.example.com --log-format json

Environment:

  CHATCTL_SECRET        the HS256 secret itself (prefer CHATCTL_SECRET_FILE)
  CHATCTL_SECRET_FILE   a file holding the HS256 secret (as --secret-file)
  CHATCTL_DATA_DIR      as --data-dir
  CHATCTL_REDIS_URL     as --redis-url
  CHATCTL_LOG_LEVEL     as --log-level
  XDG_CONFIG_HOME       default secret: $XDG_CONFIG_HOME/chatctl/secret
  XDG_DATA_HOME         default data: $XDG_DATA_HOME/chatctl/chatctl.db

Signals: SIGTERM drains (clients get 1012, reconnect elsewhere and resume) within
--drain-timeout; SIGINT closes them with 1001; SIGHUP reads the secret or public
key file again (open connections last until their token expires: 4001). With
--workers the supervisor passes signals to every worker and restarts a worker
that dies.

HTTP on the same port: GET / (the web chat page: 'chatctl token create --link'
prints links to it), GET /healthz (200, or 503 while draining or when the broker
is down) and GET /metrics (Prometheus).

Exit status: 0 stopped by SIGINT/SIGTERM, 1 bug, 2 usage error, cannot listen, or
the database is in use by another server or is not a chatctl database.
See 'man chatctl-serve', docs/deploy.md and docs/security.md.
"""

app = command_app()


def _duration(value: str | float) -> float:
    """90s, 15m, 12h, 7d, 1w, or 0 (never), in seconds."""
    if isinstance(value, int | float):
        return float(value)
    if value.strip() in ("0", "0s"):
        return 0.0
    from chatctl.config import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command(epilog=SERVE_EPILOG)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULTS.host,
    port: Annotated[
        int, typer.Option(help="TCP port to listen on.", min=0, max=65535)
    ] = DEFAULTS.port,
    history: Annotated[
        int, typer.Option(help="Messages kept per room for history and resume.", min=1)
    ] = DEFAULTS.history,
    welcome_history: Annotated[
        int,
        typer.Option(help="History messages sent on join when the client asks for none.", min=0),
    ] = DEFAULTS.welcome_history,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            help="HS256 secret file (default: CHATCTL_SECRET, CHATCTL_SECRET_FILE, "
            "then ~/.config/chatctl/secret, created if missing).",
            envvar="CHATCTL_SECRET_FILE",
            show_envvar=False,
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="Verify RS256/ES256 tokens with this PEM public key instead of a shared secret."
        ),
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Require this token 'iss'.")] = None,
    audience: Annotated[str | None, typer.Option(help="Require this token 'aud'.")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep rooms in DIR/chatctl.db (SQLite; default ~/.local/share/chatctl).",
            metavar="DIR",
            envvar="CHATCTL_DATA_DIR",
            show_envvar=False,
        ),
    ] = None,
    memory: Annotated[
        bool,
        typer.Option(
            "--memory", help="Keep rooms in memory only: history and ids are lost on exit."
        ),
    ] = DEFAULTS.memory,
    fsync: Annotated[
        bool,
        typer.Option(
            "--fsync",
            help="Sync each commit to disk: acked messages survive a power loss too (slower).",
        ),
    ] = DEFAULTS.fsync,
    history_ttl: Annotated[
        float,
        typer.Option(
            help="Forget messages older than this, and rooms idle for it (0: never).",
            parser=_duration,
            metavar="DURATION",
            show_default="7d",
        ),
    ] = DEFAULTS.history_ttl,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Share rooms with other nodes through Redis (redis://, rediss://, unix://) "
            "or a Redis Cluster (redis+cluster://HOST:PORT,HOST:PORT...).",
            envvar="CHATCTL_REDIS_URL",
            show_envvar=False,
        ),
    ] = None,
    redis_prefix: Annotated[
        str, typer.Option(help="Prefix of every Redis key.")
    ] = DEFAULTS.redis_prefix,
    redis_wait_replicas: Annotated[
        int,
        typer.Option(
            help="Ack a message only once this many Redis replicas have it (WAIT), so that "
            "a failover cannot lose it; 0: ack once the master has it.",
            min=0,
        ),
    ] = DEFAULTS.redis_wait_replicas,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes sharing the port (0: one per core); more than 1 needs "
            "--redis-url.",
            min=0,
        ),
    ] = DEFAULTS.workers,
    worker_status_port: Annotated[
        int | None,
        typer.Option(
            help="With --workers: worker K also answers /healthz and /metrics alone on this "
            "port + K - 1.",
            min=1,
            max=65535,
        ),
    ] = DEFAULTS.worker_status_port,
    presence_ttl: Annotated[
        float,
        typer.Option(
            help="Seconds before the users of a vanished node leave (Redis broker).",
            min=1,
            hidden=True,
        ),
    ] = DEFAULTS.presence_ttl,
    max_frame: Annotated[
        int, typer.Option(help="Largest incoming frame in bytes (over it: close 1009).", min=256)
    ] = DEFAULTS.max_frame,
    max_message: Annotated[
        int, typer.Option(help="Longest message in characters (over it: error frame).", min=1)
    ] = DEFAULTS.max_message,
    max_pending: Annotated[
        int,
        typer.Option(
            help="Unsent bytes per connection before it is closed as a slow consumer (4008).",
            min=1024,
        ),
    ] = DEFAULTS.max_pending,
    dedup_window: Annotated[
        float, typer.Option(help="Seconds a client id is remembered for de-duplication.", min=1)
    ] = DEFAULTS.dedup_window,
    ping_interval: Annotated[
        float, typer.Option(help="Seconds between keepalive pings (0 turns them off).", min=0)
    ] = DEFAULTS.ping_interval,
    compression: Annotated[
        bool,
        typer.Option(help="Offer permessage-deflate (about 50 KiB more memory per connection)."),
    ] = DEFAULTS.compression,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            help="debug, info, warning or error.",
            metavar="LEVEL",
            envvar="CHATCTL_LOG_LEVEL",
            show_envvar=False,
            case_sensitive=False,
        ),
    ] = DEFAULTS.log_level,
    log_format: Annotated[
        LogFormat, typer.Option(help="json: one JSON object per line.")
    ] = DEFAULTS.log_format,
    certfile: Annotated[
        Path | None,
        typer.Option(help="Serve wss:// with this PEM certificate chain (leaf first)."),
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option(help="PEM private key of --certfile (if not in it).")
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="Browser Origin allowed besides the server's own, e.g. https://chat.example.com "
            "or https://*.example.com; '*' allows any (repeatable). Clients that send no "
            "Origin (CLIs) are never refused.",
        ),
    ] = None,
    rate_limit: Annotated[
        float,
        typer.Option(
            help="Frames per second per connection (over it: rate_limited error; 0: no limit).",
            min=0,
        ),
    ] = DEFAULTS.rate_limit,
    rate_burst: Annotated[
        float, typer.Option(help="Frames a connection may send at once above --rate-limit.", min=1)
    ] = DEFAULTS.rate_burst,
    user_rate_limit: Annotated[
        float,
        typer.Option(help="Frames per second per user, all its connections on this node.", min=0),
    ] = DEFAULTS.user_rate_limit,
    user_rate_burst: Annotated[
        float, typer.Option(help="Burst above --user-rate-limit.", min=1)
    ] = DEFAULTS.user_rate_burst,
    max_connections: Annotated[
        int, typer.Option(help="Connections on this node (over it: HTTP 503; 0: no limit).", min=0)
    ] = DEFAULTS.max_connections,
    max_user_connections: Annotated[
        int, typer.Option(help="Connections per user on this node (over it: HTTP 429).", min=0)
    ] = DEFAULTS.max_user_connections,
    max_rooms: Annotated[
        int,
        typer.Option(help="Rooms with members on this node (over it: HTTP 503).", min=0),
    ] = DEFAULTS.max_rooms,
    max_user_rooms: Annotated[
        int,
        typer.Option(help="Distinct rooms one user may be in on this node (HTTP 429).", min=0),
    ] = DEFAULTS.max_user_rooms,
    handshake_timeout: Annotated[
        float,
        typer.Option(help="Seconds for the TCP+TLS+WebSocket opening handshake.", min=0.1),
    ] = DEFAULTS.handshake_timeout,
    drain_timeout: Annotated[
        float,
        typer.Option(help="Seconds a SIGTERM drain or shutdown may take before aborting.", min=0),
    ] = DEFAULTS.drain_timeout,
) -> None:
    """Run the chat server. Rooms live at ws://HOST:PORT/ws/ROOM."""
    run_serve(
        ServeOptions(
            host=host,
            port=port,
            history=history,
            welcome_history=welcome_history,
            secret_file=secret_file,
            public_key=public_key,
            issuer=issuer,
            audience=audience,
            data_dir=data_dir,
            memory=memory,
            fsync=fsync,
            history_ttl=history_ttl,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            redis_wait_replicas=redis_wait_replicas,
            workers=workers,
            worker_status_port=worker_status_port,
            presence_ttl=presence_ttl,
            max_frame=max_frame,
            max_message=max_message,
            max_pending=max_pending,
            dedup_window=dedup_window,
            ping_interval=ping_interval,
            compression=compression,
            log_level=log_level,
            log_format=log_format,
            certfile=certfile,
            keyfile=keyfile,
            allowed_origins=tuple(allowed_origin or ()),
            rate_limit=rate_limit,
            rate_burst=rate_burst,
            user_rate_limit=user_rate_limit,
            user_rate_burst=user_rate_burst,
            max_connections=max_connections,
            max_user_connections=max_user_connections,
            max_rooms=max_rooms,
            max_user_rooms=max_user_rooms,
            handshake_timeout=handshake_timeout,
            drain_timeout=drain_timeout,
        )
    )
