"""``chatctl bench``: its flags; the work is done by :mod:`chatctl.bench`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chatctl.cli.options import command_app
from chatctl.errors import UsageError
from chatctl.status import ExitStatus

BENCH_EPILOG = """\
Examples:

  chatctl bench --clients 50 --rate 20 --duration 10

  chatctl bench --clients 500 --procs 2 --saturate --rate 30

  chatctl bench --clients 500 --procs 2 --saturate --rate 30 --at-knee 0.6

  chatctl bench --rooms 50 --clients 20 --senders 2 --rate 5 --json

  chatctl bench --rooms 0 --idle 2000 --server-pid 4242

  chatctl bench --server ws://a:8000 --server ws://b:8000 --rooms 10

Every message text starts #B<step>.<sender>.<seq>.<send time µs># and every
delivery is recorded. Lost: never delivered by the end of --drain. Latency
uses the wall clock, which every process on one host shares: loopback only.
Receivers read ws:// frames with a minimal client of their own (a third less
CPU per delivery than websockets'); on a small host, pin the server and the
bench to different CPUs (taskset) so that latency is the server's.
--at-knee F runs one more step at F times the knee's rate on the same
connections; bench/compare.py --at-knee F runs every server at F times the
reference relay's knee instead. See docs/performance.md.

Exit status: 0 the run (with --saturate: its first step; with --at-knee: the
step at the fraction) met the p99 bound, lost nothing and every connection
opened; 1 otherwise; 2 usage error; 3 no connection opened, the server refused
the token (HTTP 401/403); 4 no connection opened, the server could not be
reached; 130 interrupted.

Environment:

  CHATCTL_SERVER        server URL(s), as --server
  CHATCTL_TOKEN         one token for every connection, as --token
  CHATCTL_TOKEN_COMMAND a command that prints it, as --token-command
  CHATCTL_SECRET        HS256 secret to mint one token per user
  CHATCTL_SECRET_FILE   a file holding it, as --secret-file
"""

app = command_app()


@app.callback(invoke_without_command=True, epilog=BENCH_EPILOG)
def bench(
    ctx: typer.Context,
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
    write_only: Annotated[
        bool,
        typer.Option(
            help="Senders connect write-only, as chatctl send does (?receive=0): the room's "
            "messages are not sent to them."
        ),
    ] = False,
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
    token_command: Annotated[
        str | None,
        typer.Option(
            help="Run this shell command once for the token of every connection (its stdout).",
            envvar="CHATCTL_TOKEN_COMMAND",
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
    at_knee: Annotated[
        float | None,
        typer.Option(
            help="With --saturate: after the knee, run one more step at this fraction of "
            "its rate (e.g. 0.6) and report its latency, loop lag and server CPU.",
            min=0.01,
            max=1.0,
        ),
    ] = None,
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds each connection may take to open.", min=0.1)
    ] = 30.0,
    warmup: Annotated[
        float,
        typer.Option(help="Seconds of unrecorded sending at --rate before the first step.", min=0),
    ] = 0.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Drive load against a chat server and report throughput, latency and loss
    (``chatctl bench chaos``: check delivery under faults)."""
    if ctx.invoked_subcommand is not None:
        return
    from chatctl.bench.command import bench_secret, run
    from chatctl.bench.options import BenchOptions

    token = _token(ctx, token, token_command)
    if at_knee is not None and not saturate:
        raise UsageError("--at-knee needs --saturate: it runs at a fraction of the knee found")

    opts = BenchOptions(
        servers=tuple(server or ["ws://127.0.0.1:8000"]),
        rooms=rooms,
        clients=clients,
        senders=senders,
        write_only=write_only,
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
        at_knee=at_knee,
    )
    result = run(opts, json_output=json_output)
    steps = result.get("steps") or []
    if at_knee is not None:  # judged by the step at the fraction (none: no knee was found)
        steps = [result["at_knee"]["step"]] if result.get("at_knee") else [{"ok": False}]
    if result["connect"]["failed"] or (steps and not steps[0]["ok"]):
        raise typer.Exit(ExitStatus.ERROR)


def _token(ctx: typer.Context, token: str | None, command: str | None) -> str | None:
    """``--token`` or the output of ``--token-command``: a flag beats the environment, and
    CHATCTL_TOKEN beats CHATCTL_TOKEN_COMMAND (as for join and send)."""
    if command is None:
        return token

    def flag(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    if flag("token") and flag("token_command"):
        raise UsageError("--token and --token-command both name a token: give one")
    if token is not None and not flag("token_command"):
        return token
    from chatctl.tokens.source import run_token_command

    return run_token_command(command)


from chatctl.cli import chaos as _chaos  # noqa: E402  (registers ``chatctl bench chaos``)

app.command("chaos", epilog=_chaos.CHAOS_EPILOG)(_chaos.chaos)
