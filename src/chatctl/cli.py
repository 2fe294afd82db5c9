"""The ``chatctl`` command line: parse flags, build settings, run one coroutine, map errors to
an exit status.

Subcommand implementations are imported inside the command functions, so ``chatctl send``
loads neither the server, rich, prompt-toolkit nor redis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

try:  # typer >= 0.22 vendors click as typer._click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_exc  # type: ignore[no-redef]

from chatctl import __version__
from chatctl.errors import ChatctlError, UsageError
from chatctl.status import ExitStatus

app = typer.Typer(
    name="chatctl",
    help="A command-line chat toolkit: a WebSocket chat server, a terminal client and a "
    "scriptable sender.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
token_app = typer.Typer(
    help="Mint and inspect access tokens (JWT).",
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

  chatctl serve                                  # 127.0.0.1:8000, secret created if needed

  chatctl serve --host 0.0.0.0 --history 5000

  chatctl serve --redis-url redis://10.0.0.5:6379/0   # one of many nodes

Environment: CHATCTL_SECRET, CHATCTL_SECRET_FILE, CHATCTL_REDIS_URL, XDG_CONFIG_HOME.
"""


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
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Share rooms with other nodes through Redis (redis://, rediss://, unix://).",
            envvar="CHATCTL_REDIS_URL",
            show_envvar=False,
        ),
    ] = None,
    redis_prefix: Annotated[str, typer.Option(help="Prefix of every Redis key.")] = "chatctl",
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
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            max_frame=max_frame,
            max_message=max_message,
            max_pending=max_pending,
            dedup_window=dedup_window,
            ping_interval=ping_interval,
            compression=compression,
            log_level=log_level,
        )
    )


# ------------------------------------------------------------------------------ token

TOKEN_CREATE_EPILOG = """\
Examples:

  chatctl token create --user alice

  chatctl token create --user deploy-bot --room ops --room 'team-*' --ttl 30d

  export CHATCTL_TOKEN=$(chatctl token create --user alice)

Environment: CHATCTL_SECRET, CHATCTL_SECRET_FILE, XDG_CONFIG_HOME.
"""


@token_app.command("create", epilog=TOKEN_CREATE_EPILOG)
def token_create(
    user: Annotated[str, typer.Option("--user", "-u", help="User name (the 'sub' claim).")],
    room: Annotated[
        list[str] | None,
        typer.Option("--room", "-r", help="Allow only rooms matching this glob (repeatable)."),
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

Exit status: 0 the token verifies with this server's key, 3 it does not, 2 usage error.
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
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else "", file=sys.stderr)
        sys.exit(ExitStatus.USAGE)
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
