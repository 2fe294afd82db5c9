"""``chatctl history``: its flags; the work is done by :mod:`chatctl.client.history`."""

from __future__ import annotations

from typing import Annotated

import typer

from chatctl.cli.options import (
    CLIENT_ENV,
    CafileOpt,
    ServerOpt,
    TokenCommandOpt,
    TokenFileOpt,
    TokenOpt,
    client_settings,
    command_app,
)
from chatctl.errors import UsageError
from chatctl.recent import complete_room

HISTORY_EPILOG = f"""\
Examples:

  chatctl history ops                          # the last 100 messages

  chatctl history ops --since 1h --user alice  # alice's, this past hour

  chatctl history ops --since 2026-12-05 --until 2026-12-06 --limit 0

  chatctl history ops --grep '(?i)deploy' --json | jq -r .message

  chatctl history ops --since 1200@5f2c9a1e --json   # after a saved id

--since and --until take a message id, ID@EPOCH (as --json prints it),
a duration back from now (90s, 15m, 1h, 2d, 1w, 1h30m) or an ISO date
or time (2026-12-05, 2026-12-05T14:00, ...+01:00; local time without an
offset). --since is after the id, or from the time on; --until up to
the id or the time, included. Only what the server keeps is there (its
--history and --history-ttl): a notice on stderr says when messages
after --since ID are gone, or when the room's history was reset since
ID@EPOCH.

Lines are 'YYYY-MM-DD HH:MM:SS user: text', oldest first; with --json
the protocol's message frames with the room's epoch added. The
connection is read-only: it is not listed in the room and is sent none
of its live messages.

Exit status: 0 done (also when nothing matched); 2 usage error; 3 token
rejected or room not allowed; 4 cannot connect within --timeout; 5
connected but the history not read within --timeout; 6 the server
refused the request (a server older than history requests); 7 cannot
write stdout (disk full); 8 a moderator kicked or banned you from the
room meanwhile; 130 interrupted; 141 the reader of stdout went away (|
head).

{CLIENT_ENV}
"""

app = command_app()


@app.command(epilog=HISTORY_EPILOG)
def history(
    room: Annotated[
        str,
        typer.Argument(
            help="Room to read the history of.", show_default=False, autocompletion=complete_room
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            help="Only messages after this id, or from this time on.",
            metavar="ID[@EPOCH]|DURATION|DATE",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Only messages up to this id or time (included).",
            metavar="ID[@EPOCH]|DURATION|DATE",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(help="Print the newest N matching messages (0 = every one kept).", min=0),
    ] = 100,
    from_users: Annotated[
        list[str] | None,
        typer.Option(
            "--user",
            "-u",
            metavar="NAME",
            help="Only messages of this user (repeat for several).",
            show_default=False,
        ),
    ] = None,
    grep: Annotated[
        str | None,
        typer.Option(
            metavar="REGEX",
            help="Only messages whose text matches this Python regular expression.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="One JSON message frame per line, with the room's epoch."),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Give up when no connection could be made for this many seconds (default "
            "30; 0 = never); when given, also when the read takes longer.",
            min=0,
            show_default=False,
        ),
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    token_command: TokenCommandOpt = None,
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="NAME",
            help="Your name, used only when no token is given and one is minted from the "
            "local server's secret (default: $USER; join and send call it --user).",
            show_default=False,
        ),
    ] = None,
    cafile: CafileOpt = None,
) -> None:
    """Print the messages the server keeps of ROOM, oldest first, and exit."""
    import re
    import time

    from chatctl.client.bounds import parse_bound
    from chatctl.client.history import HistoryOptions, run_history
    from chatctl.client.settings import check_room

    room = check_room(room)
    now = time.time()
    low = None if since is None else parse_bound("--since", since, now=now)
    high = None if until is None else parse_bound("--until", until, now=now)
    pattern = None
    if grep is not None:
        try:
            pattern = re.compile(grep)
        except re.error as exc:
            raise UsageError(f"--grep {grep!r}: not a regular expression: {exc}") from None
    settings = client_settings(server, token, token_file, token_command, as_user, cafile)
    run_history(
        settings,
        HistoryOptions(
            room=room,
            since=low,
            until=high,
            limit=limit,
            users=frozenset(from_users or ()),
            grep=pattern,
            json=json_output,
            timeout=timeout,
        ),
    )
