"""The ``chatctl`` command line: the root app, its subcommands and the one error boundary.

Flags are declared apart from behaviour (as httpie's ``cli/definition.py`` and ``core.py``):
each module here declares one command's flags, builds its settings and calls the module
that does the work.

- :mod:`~chatctl.cli.serve`: ``chatctl serve`` -> :mod:`chatctl.server.assemble`
- :mod:`~chatctl.cli.send`: ``chatctl send`` -> :mod:`chatctl.client.send`
- :mod:`~chatctl.cli.join`: ``chatctl join`` -> :mod:`chatctl.client.join`, :mod:`chatctl.ui`
- :mod:`~chatctl.cli.history`: ``chatctl history`` -> :mod:`chatctl.client.history`
- :mod:`~chatctl.cli.bench`: ``chatctl bench`` -> :mod:`chatctl.bench`
- :mod:`~chatctl.cli.token`: ``chatctl token create|inspect`` ->
  :mod:`chatctl.tokens.mint`, :mod:`chatctl.tokens.inspect`
- :mod:`~chatctl.cli.options`: the options ``join`` and ``send`` share

A command's module is imported only when that command is parsed (see :class:`_Commands`), so
``chatctl send`` loads neither the server, rich, prompt-toolkit nor redis.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, NoReturn

import typer

# typer >= 0.26 (the floor in pyproject.toml) vendors click as typer._click and no longer
# installs the click package, whose version then does not matter
from typer._click import Command, Context
from typer._click import exceptions as click_exc
from typer.core import TyperGroup

from chatctl import __version__
from chatctl.cli import coerce
from chatctl.cli.metavars import readable, readable_help_option
from chatctl.errors import ChatctlError, OutputError, UsageError
from chatctl.status import ExitStatus

coerce.install()  # typer converts str/int/float/bool/Path flags without pydantic

#: subcommand -> the module under chatctl.cli that declares it (as ``app``), in help order
COMMANDS = {
    "serve": "serve",
    "send": "send",
    "join": "join",
    "history": "history",
    "bench": "bench",
    "token": "token",
}

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
5 timeout, 6 message not sent, 7 cannot write stdout, 8 kicked or banned
from the room, 130 interrupted, 141 stdout closed by its reader. See
'man chatctl'.
"""


class _Commands(MutableMapping[str, Command]):
    """The subcommands by name; each one's module is imported when it is first looked up."""

    def __init__(self) -> None:
        self._loaded: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            module = importlib.import_module(f"chatctl.cli.{COMMANDS[name]}")
            self._loaded[name] = readable(typer.main.get_command(module.app))
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        raise TypeError("chatctl's subcommands are listed in chatctl.cli.COMMANDS")

    def __delitem__(self, name: str) -> None:
        raise TypeError("chatctl's subcommands are listed in chatctl.cli.COMMANDS")

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _LazyGroup(TyperGroup):
    """The root group: subcommands from :class:`_Commands`, listed without importing them."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        readable(self, recurse=False)
        self.commands = _Commands()

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)

    def get_help_option(self, ctx: Context) -> Any:
        return readable_help_option(super().get_help_option(ctx))


app = typer.Typer(
    name="chatctl",
    cls=_LazyGroup,
    epilog=ROOT_EPILOG,
    help="A command-line chat toolkit: a WebSocket chat server, a terminal client and a "
    "scriptable sender.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


def _fail(message: str, status: int) -> NoReturn:
    print(f"chatctl: {message}", file=sys.stderr)
    sys.exit(status)


def _silence_stdout() -> None:
    from chatctl.client.output import silence_stdout

    silence_stdout()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: every failure is one line on stderr and an exit status (see status.py)."""
    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args or bool(os.environ.get("CHATCTL_TRACEBACK"))
    if "--traceback" in args:
        args.remove("--traceback")
    if os.environ.get("_CHATCTL_COMPLETE"):
        # the shipped completion scripts call back with typer's protocol (there are no
        # --install-completion/--show-completion options: the package installs the scripts)
        from typer._completion_classes import completion_init

        completion_init()
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
    except OutputError as exc:  # stdout failed or its reader left: one line at most
        _silence_stdout()
        if str(exc):
            _fail(str(exc), exc.status)
        sys.exit(exc.status)
    except ChatctlError as exc:
        if traceback:
            raise
        _fail(str(exc), exc.status)
    except BrokenPipeError:  # the reader of stdout went away, as SIGPIPE would end a filter
        _silence_stdout()
        sys.exit(ExitStatus.OUTPUT_CLOSED)
    except Exception as exc:
        if traceback:
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --traceback to see where)",
            ExitStatus.ERROR,
        )
    sys.exit(rv if isinstance(rv, int) else ExitStatus.OK)


__all__ = ["COMMANDS", "UsageError", "app", "main"]
