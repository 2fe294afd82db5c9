"""The ``chatctl`` command line: parse flags, build settings, run one coroutine, map errors to
an exit status.

Subcommand implementations are imported inside the command functions, so ``chatctl send``
loads neither the server, rich, prompt-toolkit nor redis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

try:  # typer >= 0.22 vendors click as typer._click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_exc  # type: ignore[no-redef]

from chatctl import __version__
from chatctl.broker.base import DEFAULT_HISTORY_TTL
from chatctl.errors import ChatctlError, UsageError
from chatctl.recent import complete_room
from chatctl.status import ExitStatus

ROOT_EPILOG = """\
Examples:

  chatctl serve                        # a server on 127.0.0.1:8000
  export CHATCTL_TOKEN=$(chatctl token create --user alice)
  chatctl serve --help                 # every command has examples

Environment:

  CHATCTL_CONFIG        config file instead of ~/.config/chatctl/config.toml
  CHATCTL_TRACEBACK     set: show tracebacks of errors (as --traceback)
  XDG_CONFIG_HOME       config file and token secret (default ~/.config)
  XDG_STATE_HOME        recent rooms, for completion (default ~/.local/state)
  NO_COLOR              set: no colour

Exit status: 0 ok, 1 bug, 2 usage error, 3 auth refused, 4 cannot connect,
5 timeout, 6 message refused, 130 interrupted. See 'man chatctl'.
"""
TOKEN_EPILOG = """\
Examples:

  chatctl token create --user alice --ttl 12h
  chatctl token create --user bob | chatctl token inspect -

Environment:

  CHATCTL_SECRET        the HS256 secret itself
  CHATCTL_SECRET_FILE   a file holding the HS256 secret (as --secret-file)
  XDG_CONFIG_HOME       default secret: $XDG_CONFIG_HOME/chatctl/secret
"""

if TYPE_CHECKING:
    from chatctl.client.settings import ClientSettings

app = typer.Typer(
    name="chatctl",
    epilog=ROOT_EPILOG,
    help="A command-line chat toolkit: a WebSocket chat server, a terminal client and a "
    "scriptable sender.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
token_app = typer.Typer(
    help="Mint and inspect access tokens (JWT).",
    epilog=TOKEN_EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(token_app, name="token")


def _version(value: bool) -> None:
    if value:
        print(f"chatctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """A command-line chat toolkit: a WebSocket chat server, a terminal client and a scriptable
    sender."""


# ------------------------------------------------------------------------------ serve

SERVE_EPILOG = """\
Examples:

  chatctl serve                        # rooms kept in ~/.local/share/chatctl
  chatctl serve --memory               # nothing written to disk, lost on exit
  chatctl serve --host 0.0.0.0 --data-dir /var/lib/chatctl --history-ttl 30d
  chatctl serve --redis-url redis://10.0.0.5:6379/0   # one of several nodes
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
--drain-timeout; SIGINT closes them with 1001.

HTTP: GET /healthz (200, or 503 while draining or when the broker is down) and
GET /metrics (Prometheus) on the same port.

Exit status: 0 stopped by SIGINT/SIGTERM, 1 bug, 2 usage error, cannot listen, or
the database is in use by another server or is not a chatctl database.
See 'man chatctl-serve', docs/deploy.md and docs/security.md.
"""


def _duration(value: str | float) -> float:
    """90s, 15m, 12h, 7d, 1w, or 0 (never), in seconds."""
    if isinstance(value, int | float):
        return float(value)
    if value.strip() in ("0", "0s"):
        return 0.0
    from chatctl.auth import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command(epilog=SERVE_EPILOG)
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=0, max=65535)] = 8000,
    history: Annotated[
        int, typer.Option(help="Messages kept per room for history and resume.", min=1)
    ] = 1000,
    welcome_history: Annotated[
        int,
        typer.Option(help="History messages sent on join when the client asks for none.", min=0),
    ] = 20,
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
    ] = False,
    fsync: Annotated[
        bool,
        typer.Option(
            "--fsync",
            help="Sync each commit to disk: acked messages survive a power loss too (slower).",
        ),
    ] = False,
    history_ttl: Annotated[
        float,
        typer.Option(
            help="Forget messages older than this, and rooms idle for it (0: never).",
            parser=_duration,
            metavar="DURATION",
            show_default="7d",
        ),
    ] = DEFAULT_HISTORY_TTL,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Share rooms with other nodes through Redis (redis://, rediss://, unix://).",
            envvar="CHATCTL_REDIS_URL",
            show_envvar=False,
        ),
    ] = None,
    redis_prefix: Annotated[str, typer.Option(help="Prefix of every Redis key.")] = "chatctl",
    presence_ttl: Annotated[
        float,
        typer.Option(
            help="Seconds before the users of a vanished node leave (Redis broker).",
            min=1,
            hidden=True,
        ),
    ] = 20.0,
    max_frame: Annotated[
        int, typer.Option(help="Largest incoming frame in bytes (over it: close 1009).", min=256)
    ] = 65536,
    max_message: Annotated[
        int, typer.Option(help="Longest message in characters (over it: error frame).", min=1)
    ] = 8000,
    max_pending: Annotated[
        int,
        typer.Option(
            help="Unsent bytes per connection before it is closed as a slow consumer (4008).",
            min=1024,
        ),
    ] = 1048576,
    dedup_window: Annotated[
        float, typer.Option(help="Seconds a client id is remembered for de-duplication.", min=1)
    ] = 600.0,
    ping_interval: Annotated[
        float, typer.Option(help="Seconds between keepalive pings (0 turns them off).", min=0)
    ] = 20.0,
    compression: Annotated[
        bool,
        typer.Option(help="Offer permessage-deflate (about 50 KiB more memory per connection)."),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            help="debug, info, warning or error.", envvar="CHATCTL_LOG_LEVEL", show_envvar=False
        ),
    ] = "info",
    log_format: Annotated[
        str, typer.Option(help="text, or json for one JSON object per line.")
    ] = "text",
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
    ] = 1000.0,
    rate_burst: Annotated[
        float, typer.Option(help="Frames a connection may send at once above --rate-limit.", min=1)
    ] = 50000.0,
    user_rate_limit: Annotated[
        float,
        typer.Option(help="Frames per second per user, all its connections on this node.", min=0),
    ] = 2000.0,
    user_rate_burst: Annotated[
        float, typer.Option(help="Burst above --user-rate-limit.", min=1)
    ] = 100000.0,
    max_connections: Annotated[
        int, typer.Option(help="Connections on this node (over it: HTTP 503; 0: no limit).", min=0)
    ] = 10000,
    max_user_connections: Annotated[
        int, typer.Option(help="Connections per user on this node (over it: HTTP 429).", min=0)
    ] = 100,
    max_rooms: Annotated[
        int,
        typer.Option(help="Rooms with members on this node (over it: HTTP 503).", min=0),
    ] = 10000,
    max_user_rooms: Annotated[
        int,
        typer.Option(help="Distinct rooms one user may be in on this node (HTTP 429).", min=0),
    ] = 32,
    handshake_timeout: Annotated[
        float,
        typer.Option(help="Seconds for the TCP+TLS+WebSocket opening handshake.", min=0.1),
    ] = 10.0,
    drain_timeout: Annotated[
        float,
        typer.Option(help="Seconds a SIGTERM drain or shutdown may take before aborting.", min=0),
    ] = 10.0,
) -> None:
    """Run the chat server. Rooms live at ws://HOST:PORT/ws/ROOM."""
    from chatctl.serve import ServeOptions, run_serve

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


# ------------------------------------------------------------------------------ clients

CLIENT_ENV = (
    "Environment: CHATCTL_SERVER, CHATCTL_TOKEN, CHATCTL_TOKEN_FILE, CHATCTL_CAFILE,\n"
    "CHATCTL_CONFIG, XDG_CONFIG_HOME, XDG_STATE_HOME."
)

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        "-s",
        help="Server URL, ws:// or wss:// (env CHATCTL_SERVER, then config.toml; default "
        "ws://127.0.0.1:8000).",
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        "-t",
        help="Access token, or - to read it from stdin (prefer CHATCTL_TOKEN or --token-file: "
        "argv is visible in ps).",
        show_default=False,
    ),
]
TokenFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="Read the token from this file (env CHATCTL_TOKEN_FILE).", show_default=False
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        help="Your name, used only when no token is given and one is minted from the local "
        "server's secret (default: $USER).",
        show_default=False,
    ),
]
CafileOpt = Annotated[
    Path | None,
    typer.Option(
        help="Trust this CA bundle (PEM) for wss:// (env CHATCTL_CAFILE).", show_default=False
    ),
]


def _client_settings(
    server: str | None,
    token: str | None,
    token_file: Path | None,
    user: str | None,
    cafile: Path | None,
) -> ClientSettings:
    from chatctl.client.settings import resolve_settings

    return resolve_settings(
        server=server, token=token, token_file=token_file, user=user, cafile=cafile
    )


SEND_EPILOG = f"""\
Examples:

  chatctl send ops 'deploy finished'

  chatctl send ops --me 'restarts the build'

  tail -f /var/log/app.log | chatctl send ops

  make 2>&1 | chatctl send build --json | jq .id

Exit status: 0 every message acked; 2 usage error; 3 token rejected
(HTTP 401) or room not allowed (403); 4 cannot connect within --timeout;
5 connected but not every message acked within --timeout; 6 the server
rejected a message (e.g. too long); 130 interrupted.

{CLIENT_ENV}
"""


@app.command(epilog=SEND_EPILOG)
def send(
    room: Annotated[
        str,
        typer.Argument(help="Room to send to.", show_default=False, autocompletion=complete_room),
    ],
    text: Annotated[
        list[str] | None,
        typer.Argument(
            help="The message (words are joined with spaces). Without it, or with -, each "
            "line of stdin is one message, sent as it arrives.",
            show_default=False,
        ),
    ] = None,
    me: Annotated[bool, typer.Option("--me", help="Send as an action (like /me).")] = False,
    timeout: Annotated[
        float,
        typer.Option(
            help="Give up after this many seconds without a connection, or without an ack "
            "for a pending message (0 = never).",
            min=0,
        ),
    ] = 30.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print each ack as one JSON object per line.")
    ] = False,
    window: Annotated[
        int, typer.Option(help="Messages in flight before waiting for acks.", min=1, max=100000)
    ] = 1000,
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    user: UserOpt = None,
    cafile: CafileOpt = None,
) -> None:
    """Send a message, or one message per line of stdin; exit 0 once the server acked all."""
    from chatctl.client.send import SendOptions, run_send, stdin_is_terminal
    from chatctl.client.settings import check_room

    check_room(room)
    texts: list[str] | None = None
    if text and text != ["-"]:
        texts = [" ".join(text)]
    elif not text and stdin_is_terminal():
        raise UsageError("no message: give TEXT, or pipe lines to stdin (or use - for stdin)")
    if token == "-" and texts is None:
        raise UsageError("--token - and messages from stdin cannot share stdin")
    settings = _client_settings(server, token, token_file, user, cafile)
    run_send(
        settings,
        SendOptions(
            room=room,
            texts=texts,
            kind="action" if me else "text",
            timeout=timeout,
            json=json_output,
            window=window,
        ),
    )


JOIN_EPILOG = f"""\
Examples:

  chatctl join ops                          # interactive; try /help

  chatctl join ops --json | jq -r .message  # one JSON line per event

  chatctl join ops --history 50 --once      # recent history, then exit

  chatctl join ops --since 1200 --count 10  # 10 messages after id 1200

On a terminal: /help /who /me /join /clear /bell /quit; Tab completes;
Up/Down recalls; Alt-Enter adds a newline; Ctrl-D or Ctrl-C quits.

When stdout is not a terminal (or with --json): one line per event,
'HH:MM:SS user: text', or with --json the protocol's frames. Notices
(reconnects, missed history) go to stderr.

Exit status: 0 done (/quit, --once, --count); 2 usage error; 3 token
rejected or room not allowed; 130 interrupted. Lost connections are
retried until stopped.

{CLIENT_ENV} NO_COLOR or TERM=dumb: no colour.
"""


@app.command(epilog=JOIN_EPILOG)
def join(
    room: Annotated[
        str,
        typer.Argument(help="Room to join.", show_default=False, autocompletion=complete_room),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per event (implies script mode).")
    ] = False,
    since: Annotated[
        int | None,
        typer.Option(help="Start after this message id.", min=0, show_default=False),
    ] = None,
    history: Annotated[
        int | None,
        typer.Option(
            help="History messages to show first (server default: 20).", min=0, show_default=False
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(help="Exit after printing N messages.", min=1, show_default=False),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Exit at the end of the history (no live messages).")
    ] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    user: UserOpt = None,
    cafile: CafileOpt = None,
) -> None:
    """Join ROOM: an interactive chat on a terminal, one line per event in a pipe."""
    from chatctl.client.settings import check_room

    check_room(room)
    settings = _client_settings(server, token, token_file, user, cafile)
    interactive = not json_output and not once and count is None and sys.stdout.isatty()
    if interactive and sys.stdin.isatty():
        from chatctl.ui.app import run_interactive

        run_interactive(settings, room, since=since, history=history)
        return
    from chatctl.client.join import JoinOptions, run_join

    run_join(
        settings,
        JoinOptions(
            room=room, json=json_output, since=since, history=history, count=count, once=once
        ),
    )


# ------------------------------------------------------------------------------ token

TOKEN_CREATE_EPILOG = """\
Examples:

  chatctl token create --user alice
  chatctl token create --user deploy-bot --room ops --room 'team-*' --ttl 30d
  export CHATCTL_TOKEN=$(chatctl token create --user alice)

Environment:

  CHATCTL_SECRET        the HS256 secret itself
  CHATCTL_SECRET_FILE   a file holding the HS256 secret (as --secret-file)
  XDG_CONFIG_HOME       default secret: $XDG_CONFIG_HOME/chatctl/secret

Exit status: 0 printed, 2 usage error (bad user or TTL, no secret).
"""


@token_app.command("create", epilog=TOKEN_CREATE_EPILOG)
def token_create(
    user: Annotated[str, typer.Option("--user", "-u", help="User name (the 'sub' claim).")],
    room: Annotated[
        list[str] | None,
        typer.Option(
            "--room",
            "-r",
            help="Allow only rooms matching this glob (repeatable).",
            autocompletion=complete_room,
        ),
    ] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: 90s, 15m, 12h, 7d, 1w.")] = "24h",
    secret_file: Annotated[
        Path | None,
        typer.Option(
            help="HS256 secret file (default: as chatctl serve).",
            envvar="CHATCTL_SECRET_FILE",
            show_envvar=False,
        ),
    ] = None,
    private_key: Annotated[
        Path | None, typer.Option(help="Sign with this PEM private key (RS256/ES256).")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Set the 'iss' claim.")] = None,
    audience: Annotated[str | None, typer.Option(help="Set the 'aud' claim.")] = None,
) -> None:
    """Print a new signed token for USER."""
    from chatctl.tokens import create_token

    print(
        create_token(
            user=user,
            rooms=room or [],
            ttl=ttl,
            secret_file=secret_file,
            private_key=private_key,
            issuer=issuer,
            audience=audience,
        )
    )


TOKEN_INSPECT_EPILOG = """\
Examples:

  chatctl token inspect "$CHATCTL_TOKEN"
  chatctl token create --user bob | chatctl token inspect -
  chatctl token inspect --json "$CHATCTL_TOKEN" | jq .claims

Environment:

  CHATCTL_SECRET        the HS256 secret itself
  CHATCTL_SECRET_FILE   a file holding the HS256 secret (as --secret-file)
  XDG_CONFIG_HOME       default secret: $XDG_CONFIG_HOME/chatctl/secret

Exit status: 0 the token verifies with this key, 3 it does not, 2 usage error.
"""


@token_app.command("inspect", epilog=TOKEN_INSPECT_EPILOG)
def token_inspect(
    token: Annotated[str, typer.Argument(help="The token, or - to read it from stdin.")],
    secret_file: Annotated[
        Path | None,
        typer.Option(
            help="HS256 secret file (default: as chatctl serve).",
            envvar="CHATCTL_SECRET_FILE",
            show_envvar=False,
        ),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="Verify with this PEM public key instead.")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Require this 'iss'.")] = None,
    audience: Annotated[str | None, typer.Option(help="Require this 'aud'.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a token's claims and whether this server's key verifies it."""
    from chatctl.tokens import inspect_token

    if token == "-":
        token = sys.stdin.readline().strip()
    ok = inspect_token(
        token,
        secret_file=secret_file,
        public_key=public_key,
        issuer=issuer,
        audience=audience,
        json_output=json_output,
    )
    if not ok:
        raise typer.Exit(ExitStatus.AUTH)


# ------------------------------------------------------------------------------ bench

BENCH_EPILOG = """\
Examples:

  chatctl bench --clients 50 --rate 20 --duration 10

  chatctl bench --clients 500 --procs 2 --saturate --rate 30

  chatctl bench --rooms 50 --clients 20 --senders 2 --rate 5 --json

  chatctl bench --rooms 0 --idle 2000 --server-pid 4242

  chatctl bench --server ws://a:8000 --server ws://b:8000 --rooms 10

Every message text starts #B<step>.<sender>.<seq>.<send time µs># and every
delivery is recorded. Lost: never delivered by the end of --drain. Latency
uses the wall clock, which every process on one host shares: loopback only.
See docs/performance.md.

Exit status: 0 the run (with --saturate: its first step) met the p99 bound,
lost nothing and every connection opened; 1 otherwise; 2 usage error; 3 no
connection opened, the server refused the token (HTTP 401/403); 4 no
connection opened, the server could not be reached; 130 interrupted.

Environment:

  CHATCTL_SERVER        server URL(s), as --server
  CHATCTL_TOKEN         one token for every connection, as --token
  CHATCTL_SECRET        HS256 secret to mint one token per user
  CHATCTL_SECRET_FILE   a file holding it, as --secret-file
"""


@app.command(epilog=BENCH_EPILOG)
def bench(
    server: Annotated[
        list[str] | None,
        typer.Option(
            help="Server base URL; rooms are SERVER/ws/ROOM. Repeat it for several nodes: "
            "each room's clients are spread over them round-robin (default "
            "ws://127.0.0.1:8000).",
            envvar="CHATCTL_SERVER",
            show_envvar=False,
        ),
    ] = None,
    rooms: Annotated[int, typer.Option(help="Rooms to load.", min=0)] = 1,
    clients: Annotated[int, typer.Option(help="Connections per room.", min=0)] = 10,
    senders: Annotated[int, typer.Option(help="Senders per room (among its clients).", min=0)] = 1,
    rate: Annotated[float, typer.Option(help="Messages/s per sender.", min=0)] = 10.0,
    duration: Annotated[float, typer.Option(help="Seconds of sending per step.", min=0.1)] = 10.0,
    size: Annotated[int, typer.Option(help="Characters per message text.", min=1)] = 64,
    idle: Annotated[int, typer.Option(help="Extra idle connections to open and hold.", min=0)] = 0,
    procs: Annotated[int, typer.Option(help="Load-client processes.", min=1)] = 1,
    drain: Annotated[
        float, typer.Option(help="Seconds to wait for deliveries after sending stops.", min=0)
    ] = 2.0,
    server_pid: Annotated[
        int | None,
        typer.Option(
            help="Server process id (same host): report its RSS per connection and CPU per "
            "delivery."
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            help="One token (one user) for every connection; a server that caps connections "
            "per user refuses the rest (default: mint one token per user from the secret).",
            envvar="CHATCTL_TOKEN",
            show_envvar=False,
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            help="HS256 secret to mint tokens with (default: as chatctl serve).",
            envvar="CHATCTL_SECRET_FILE",
            show_envvar=False,
        ),
    ] = None,
    saturate: Annotated[
        bool, typer.Option(help="Raise the rate step by step until p99 or loss fails.")
    ] = False,
    p99_bound: Annotated[
        float, typer.Option(help="Saturation bound on p99 latency, ms.", min=0.1)
    ] = 100.0,
    step_factor: Annotated[
        float, typer.Option(help="Rate multiplier between saturation steps.", min=1.01)
    ] = 1.25,
    max_steps: Annotated[int, typer.Option(help="Most saturation steps.", min=1)] = 12,
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds each connection may take to open.", min=0.1)
    ] = 30.0,
    warmup: Annotated[
        float,
        typer.Option(help="Seconds of unrecorded sending at --rate before the first step.", min=0),
    ] = 0.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Drive load against a chat server and report throughput, latency and loss."""
    from chatctl.bench.command import bench_secret, run
    from chatctl.bench.runner import BenchOptions

    opts = BenchOptions(
        servers=tuple(server or ["ws://127.0.0.1:8000"]),
        rooms=rooms,
        clients=clients,
        senders=senders,
        rate=rate,
        duration=duration,
        size=size,
        idle=idle,
        procs=procs,
        drain=drain,
        server_pid=server_pid,
        token=token,
        secret=bench_secret(token, secret_file),
        saturate=saturate,
        p99_bound=p99_bound / 1000,
        step_factor=step_factor,
        max_steps=max_steps,
        connect_timeout=connect_timeout,
        warmup=warmup,
    )
    result = run(opts, json_output=json_output)
    steps = result.get("steps") or []
    if result["connect"]["failed"] or (steps and not steps[0]["ok"]):
        raise typer.Exit(ExitStatus.ERROR)


# ------------------------------------------------------------------------------ entry point


def _fail(message: str, status: int) -> NoReturn:
    print(f"chatctl: {message}", file=sys.stderr)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every failure is one line on stderr and an exit status (see status.py)."""
    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args or bool(os.environ.get("CHATCTL_TRACEBACK"))
    if "--traceback" in args:
        args.remove("--traceback")
    command = typer.main.get_command(app)
    try:
        rv = command.main(args, prog_name="chatctl", standalone_mode=False)
    except click_exc.NoArgsIsHelpError:
        sys.exit(ExitStatus.USAGE)  # the help was printed already
    except click_exc.UsageError as exc:
        hint = f" (see 'chatctl {exc.ctx.info_name} --help')" if exc.ctx else ""
        if exc.ctx and exc.ctx.command_path:
            hint = f" (see '{exc.ctx.command_path} --help')"
        _fail(f"{exc.format_message()}{hint}", ExitStatus.USAGE)
    except typer.Abort:
        _fail("interrupted", ExitStatus.INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        sys.exit(ExitStatus.INTERRUPTED)
    except ChatctlError as exc:
        if traceback:
            raise
        _fail(str(exc), exc.status)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(ExitStatus.OK)
    except Exception as exc:
        if traceback:
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --traceback to see where)",
            ExitStatus.ERROR,
        )
    sys.exit(rv if isinstance(rv, int) else ExitStatus.OK)


__all__ = ["UsageError", "app", "main"]
