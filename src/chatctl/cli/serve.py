"""``chatctl serve``: its flags, built from the declared settings; the server is built and run
by :mod:`chatctl.server.assemble`.

No flag is written here: each comes from one :class:`~chatctl.setting.Setting`, declared in
:class:`~chatctl.server.options.ServeOptions` or, for a broker's own options, in its registry
entry (:mod:`chatctl.broker.registry`). :func:`_parameter` turns a setting into a typer
option, and the command's signature is built from them (as httpie's ``cli/definition.py`` is
the one list its parser and help read), so --help, the man page and the completions follow.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from chatctl.cli.options import command_app
from chatctl.server.options import all_settings, options_from
from chatctl.setting import Setting

#: variables read by the server that are not a flag's
_MORE_ENV = (
    ("CHATCTL_SECRET", "the HS256 secret itself (prefer CHATCTL_SECRET_FILE)"),
    ("XDG_CONFIG_HOME", "default secret: $XDG_CONFIG_HOME/chatctl/secret"),
    ("XDG_DATA_HOME", "default data: $XDG_DATA_HOME/chatctl/chatctl.db"),
)


def _environment(settings: tuple[Setting, ...]) -> str:
    rows = [(s.env, f"as {s.option}") for s in settings if s.env and not s.hidden]
    rows[1:1] = [_MORE_ENV[0]]
    rows += _MORE_ENV[1:]
    return "\n".join(f"  {name:<21} {what}" for name, what in rows)


SERVE_EPILOG = f"""\
Examples:

  chatctl serve                        # rooms kept in ~/.local/share/chatctl
  chatctl serve --broker memory:       # nothing written to disk, lost on exit
  chatctl serve --host 0.0.0.0 --data-dir /var/lib/chatctl --history-ttl 30d
  chatctl serve --broker redis://10.0.0.5:6379/0   # one of several nodes
  chatctl serve --workers 0 --broker redis://10.0.0.5:6379/0   # every core
  chatctl serve --broker redis+cluster://10.0.0.5:7000,10.0.0.6:7000
  chatctl serve --port 443 --certfile cert.pem --keyfile key.pem   # wss://
  chatctl serve --allowed-origin https://chat.example.com --log-format json

--memory, --redis-url URL and --data-dir DIR are aliases of --broker memory:,
--broker URL and --broker sqlite:///DIR/; two flags that choose different brokers
are a usage error.

Environment:

{_environment(all_settings())}

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


def _parser(parse: typing.Callable[[str], Any]) -> typing.Callable[[str], Any]:
    def parser(value: str) -> Any:
        try:
            return parse(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    return parser


def _parameter(s: Setting) -> inspect.Parameter:
    """The typer option of one setting, as a keyword-only parameter of :func:`serve`."""
    kind: Any = s.type
    default = s.default
    info: dict[str, Any] = {
        "help": s.help,
        "rich_help_panel": s.section,
        "hidden": s.hidden,
        "show_envvar": False,  # the epilog lists the variables
    }
    if typing.get_origin(kind) is tuple:  # repeatable: typer gives a list, or None
        kind, default = list[typing.get_args(kind)[0]] | None, None  # type: ignore[misc]
    if s.env:
        info["envvar"] = s.env
    for bound in ("min", "max"):
        value = getattr(s, bound)
        if value is not None:
            info[bound] = int(value) if kind in (int, int | None) else value
    if s.metavar:
        info["metavar"] = s.metavar
    if s.parser is not None:
        info["parser"] = _parser(s.parser)
    if s.shown_default is not None:
        info["show_default"] = s.shown_default
    if not s.case_sensitive:
        info["case_sensitive"] = False
    if isinstance(default, Path | None) and kind is not bool and default is None:
        info.setdefault("show_default", False)
    decls = (s.option,) if (s.flag or s.switch) else ()
    option = typer.Option(*decls, **info)
    return inspect.Parameter(
        s.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option]
    )


def serve(ctx: typer.Context, **values: Any) -> None:
    """Run the chat server. Rooms live at ws://HOST:PORT/ws/ROOM."""
    from chatctl.server.assemble import run_serve

    run_serve(options_from(_command_line_wins(ctx, values)))


#: flags that choose the broker: one given on the command line overrides the others'
#: environment variables (CHATCTL_REDIS_URL set on a host does not conflict with --broker),
#: and CHATCTL_DATA_DIR (SQLite's default place) is ignored when another broker is chosen
_CHOOSERS = ("broker", "redis_url", "memory", "data_dir")


def _command_line_wins(ctx: typer.Context, values: dict[str, Any]) -> dict[str, Any]:
    sources = {name: getattr(ctx.get_parameter_source(name), "name", None) for name in _CHOOSERS}
    if "COMMANDLINE" in sources.values():
        for name, source in sources.items():
            if source == "ENVIRONMENT":
                values[name] = None
    if sources["data_dir"] == "ENVIRONMENT" and any(values[n] for n in _CHOOSERS[:3]):
        values["data_dir"] = None
    return values


_CONTEXT = inspect.Parameter(
    "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
)
serve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_CONTEXT, *(_parameter(s) for s in all_settings())]
)
app.command(epilog=SERVE_EPILOG)(serve)
