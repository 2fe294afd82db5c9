"""``chatctl join``: its flags; the work is done by :mod:`chatctl.client.join` (scripts) or
:mod:`chatctl.ui.app` (a terminal)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from chatctl.cli.options import (
    CLIENT_ENV,
    CafileOpt,
    ServerOpt,
    TokenCommandOpt,
    TokenFileOpt,
    TokenOpt,
    UserOpt,
    client_settings,
    command_app,
)
from chatctl.protocol import DEFAULT_WELCOME_HISTORY
from chatctl.recent import complete_room

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
retried until stopped. The token source is read again at every reconnect
and before the token expires; once connected, an expired token from a
file, a command or config.toml is waited for (a fixed one exits 3).

{CLIENT_ENV} NO_COLOR or TERM=dumb: no colour.
"""

app = command_app()


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
            help=f"History messages to show first (server default: {DEFAULT_WELCOME_HISTORY}).",
            min=0,
            show_default=False,
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
    token_command: TokenCommandOpt = None,
    user: UserOpt = None,
    cafile: CafileOpt = None,
) -> None:
    """Join ROOM: an interactive chat on a terminal, one line per event in a pipe."""
    from chatctl.client.settings import check_room

    check_room(room)
    settings = client_settings(server, token, token_file, token_command, user, cafile)
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
