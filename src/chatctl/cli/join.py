"""``chatctl join``: its flags; the work is done by :mod:`chatctl.client.join` (scripts) or
:mod:`chatctl.ui.app` (a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Annotated, Any

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

  chatctl join general ops dev              # one window per room (Alt-1..3)

  chatctl join ops --json | jq -r .message  # one JSON line per message

  chatctl join ops --events | jq -c 'select(.type == "presence")'

  chatctl join ops --history 50 --once      # recent history, then exit

  chatctl join ops --since 1200 --count 10  # 10 messages after id 1200

  chatctl join ops --since 1200@5f2c9a1e --once --json  # resume a script

  chatctl join deploys --history 0 --count 1 --timeout 600  # or exit 5

On a terminal: /help /who /me /join /part /window /history /reconnect
/clear /bell /highlight /say /quit; Tab completes; Up/Down recalls;
Alt-Enter adds a newline; Ctrl-C clears the line; Ctrl-D quits. Several
rooms: one window each, Alt-1..9, Alt-Left/Right or Ctrl-P/N switch; the
status line shows the room, its users, the connection, unread mentions
and the other windows' activity. PageUp loads older messages. Each room
starts at your read marker (the last message you saw, kept in
~/.local/state/chatctl/read): what is new is under a 'new messages'
line. Without ROOM: the rooms listed in config.toml (join.rooms). A
message naming you or a highlight word, or a direct message, in any
window: the bell, the count in the terminal's title, and
--notify-command CMD run as CMD ROOM USER TEXT. See 'man chatctl-join'.

When stdout is not a terminal (or with --json): one line per message,
'HH:MM:SS user: text', or with --json the protocol's message frames
(with the room's epoch added: save "ID@EPOCH" for --since); --events
adds the other frames (presence), --type TYPE picks the types printed.
Escape sequences in messages are removed whole (--ansi keeps their
colours, bold and underline). Notices
(reconnects, missed history) go to stderr. When the room's history was
reset since ID@EPOCH, a notice says so and the new epoch's messages
are printed from id 1.

Exit status: 0 done (/quit, --once, --count, or --timeout ended a
follower); 2 usage error; 3 token rejected or room not allowed; 4
cannot connect within --timeout at first; 5 --timeout ran out before
--count or --once; 7 cannot write stdout (disk full); 8 a moderator
kicked or banned you from the room (stderr says who and why; also a
ban refusing the connection); 130 interrupted; 141 the
reader of stdout went away (| head). Once connected, lost connections
are retried until stopped. The token source is read again at every
reconnect and before the token expires; once connected, an expired
token from a file, a command or config.toml is waited for (a fixed one
exits 3).

{CLIENT_ENV}
NO_COLOR: no colour (bold and reverse stay); TERM=dumb: plain text.
"""

app = command_app()


@app.command(epilog=JOIN_EPILOG)
def join(
    rooms: Annotated[
        list[str] | None,
        typer.Argument(
            help="Rooms to join (a terminal opens a window for each; default: the rooms "
            "listed in config.toml).",
            show_default=False,
            autocompletion=complete_room,
            metavar="ROOM...",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON object per message, the protocol's frame (script mode)."
        ),
    ] = False,
    events: Annotated[
        bool,
        typer.Option(
            "--events", help="With --json, every frame: presence changes too (implies --json)."
        ),
    ] = False,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Print only frames of this type, message or presence (repeatable; "
            "implies --json).",
            metavar="TYPE",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Start after this message id; as ID@EPOCH (--json prints both), a room "
            "reset since then is noticed and its new messages are printed from id 1.",
            metavar="ID[@EPOCH]",
            show_default=False,
        ),
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
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Give up when the first connection takes longer (default 30; 0 = never); in "
            "scripts, also end the whole wait then.",
            min=0,
            show_default=False,
        ),
    ] = None,
    ansi: Annotated[
        bool,
        typer.Option(
            "--ansi",
            help="Show the colours, bold and underline messages carry (ANSI SGR); every "
            "other escape sequence is still removed.",
        ),
    ] = False,
    highlight: Annotated[
        list[str] | None,
        typer.Option(
            "--highlight",
            help="On a terminal: a word that alerts as your name does (repeatable; replaces "
            "join.highlight of config.toml; /highlight adds more).",
            metavar="WORD",
            show_default=False,
        ),
    ] = None,
    notify_command: Annotated[
        str | None,
        typer.Option(
            help="On a terminal: run this command on each mention, highlight or direct "
            "message, with the room, the user and the text as three more arguments (split "
            "like a shell line, run without a shell; join.notify_command in config.toml).",
            metavar="CMD",
            show_default=False,
        ),
    ] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    token_command: TokenCommandOpt = None,
    user: UserOpt = None,
    cafile: CafileOpt = None,
) -> None:
    """Join ROOM: an interactive chat on a terminal (a window per room), one line per event
    in a pipe."""
    from chatctl.client.settings import check_room
    from chatctl.errors import UsageError

    since_id, epoch = parse_since(since)
    if highlight or notify_command is not None:  # a mistake is said before connecting
        from chatctl.ui.config import JoinConfig

        JoinConfig().given(highlight=highlight, notify_command=notify_command)
    printed = json_types(events, types)
    json_output = json_output or printed is not None
    settings = client_settings(server, token, token_file, token_command, user, cafile)
    names = rooms or configured_rooms(settings.config)
    if not names:
        raise UsageError("join: name a ROOM (or list them in config.toml: [join] rooms = [...])")
    checked = list(dict.fromkeys(check_room(r) for r in names))
    room = checked[0]
    interactive = not json_output and not once and count is None and sys.stdout.isatty()
    if interactive and sys.stdin.isatty():
        from chatctl.client.join import connect_bound
        from chatctl.ui.app import run_interactive

        if since is not None and len(checked) > 1:
            raise UsageError("join: --since takes one ROOM")
        run_interactive(
            settings,
            checked,
            since=since_id,
            epoch=epoch,
            history=history,
            connect_timeout=connect_bound(timeout),
            ansi=ansi,
            highlight=highlight,
            notify_command=notify_command,
        )
        return
    if len(checked) > 1:
        raise UsageError("join: several rooms need a terminal (scripts: one ROOM per join)")
    from chatctl.client.join import JoinOptions, run_join

    run_join(
        settings,
        JoinOptions(
            room=room,
            json=json_output,
            since=since_id,
            epoch=epoch,
            history=history,
            count=count,
            once=once,
            timeout=timeout,
            ansi=ansi,
            **({} if printed is None else {"types": printed}),
        ),
    )


def configured_rooms(config: Mapping[str, Any]) -> list[str]:
    """``[join] rooms`` of config.toml (a list of room names), [] when not set."""
    from chatctl.errors import ConfigError

    table = config.get("join", {})
    rooms = table.get("rooms", []) if isinstance(table, dict) else []
    if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
        raise ConfigError(f"config.toml: [join] rooms must be a list of room names: {rooms!r}")
    return list(rooms)


def json_types(events: bool, types: list[str] | None) -> frozenset[str] | None:
    """The frame types ``--events`` / ``--type`` ask for; None: neither was given."""
    from chatctl.client.join import JSON_TYPES
    from chatctl.errors import UsageError

    if events:
        return frozenset(JSON_TYPES)
    if not types:
        return None
    for name in types:
        if name not in JSON_TYPES:
            raise UsageError(f"--type {name!r}: expected one of {', '.join(JSON_TYPES)}")
    return frozenset(types)


def parse_since(value: str | None) -> tuple[int | None, str | None]:
    """``--since ID`` or ``--since ID@EPOCH`` -> (id, epoch); a usage error otherwise."""
    if value is None:
        return None, None
    from chatctl.errors import UsageError
    from chatctl.protocol import EPOCH_RE

    text, at, epoch = value.partition("@")
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"--since {value!r}: expected ID or ID@EPOCH, ID a message id (0, 1, 2…)")
    if at and EPOCH_RE.fullmatch(epoch) is None:
        raise UsageError(
            f"--since {value!r}: the epoch is 1-64 characters from A-Z a-z 0-9 . _ - "
            "(as a welcome or 'chatctl join --json' gives it)"
        )
    return int(text), (epoch if at else None)
