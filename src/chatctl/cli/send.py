"""``chatctl send``: its flags; the work is done by :mod:`chatctl.client.send`."""

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
    UserOpt,
    client_settings,
    command_app,
)
from chatctl.errors import UsageError
from chatctl.recent import complete_room

SEND_EPILOG = f"""\
Examples:

  chatctl send ops 'deploy finished'

  chatctl send ops --me 'restarts the build'

  tail -f /var/log/app.log | chatctl send ops

  make 2>&1 | chatctl send build --json | jq .id

  python3 job.py 2>&1 | chatctl send build --whole   # one message

  find . -name '*.log' -print0 | chatctl send ops -0

Each line of stdin is UTF-8 (a byte-order mark at the start is dropped);
a line that is not, or is over 64 KiB, is reported with its number and
not sent (--encoding-errors replace sends it with U+FFFD instead).
--whole sends all of stdin as one message, -0 each NUL-terminated
record, --paragraphs each block of lines up to a blank line; the
newlines at the end of a block are dropped, and a block is reported by
its number ("message 2 not sent: ...") when it is too long.

Exit status: 0 every message acked; 2 usage error; 3 token rejected
(HTTP 401) or room not allowed (403); 4 cannot connect within --timeout;
5 connected but a message not acked within --timeout of being read; 6 a
message not sent: the server rejected it (e.g. too long, or you are
muted in the room), or a line was over 64 KiB or not UTF-8; 7 with
--json, stdout failed (disk full); 8 a moderator kicked or banned you
from the room (stderr says who and why, and how many were not acked); 130
interrupted; 141 with --json, the reader of stdout went away (| head):
nothing more is read, and stderr says how far it got.

{CLIENT_ENV}
"""

app = command_app()


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
            "line of stdin is one message, sent as it arrives (or see --whole, -0, "
            "--paragraphs).",
            show_default=False,
        ),
    ] = None,
    me: Annotated[bool, typer.Option("--me", help="Send as an action (like /me).")] = False,
    timeout: Annotated[
        float,
        typer.Option(
            help="Give up when no connection could be made for this many seconds, or when a "
            "message is not acked this many seconds after it was read, whatever errors come "
            "back meanwhile (0 = never).",
            min=0,
        ),
    ] = 30.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print each ack as one JSON object per line.")
    ] = False,
    window: Annotated[
        int, typer.Option(help="Messages in flight before waiting for acks.", min=1, max=100000)
    ] = 1000,
    whole: Annotated[
        bool, typer.Option("--whole", help="Send all of stdin as one message (at its end).")
    ] = False,
    null: Annotated[
        bool,
        typer.Option("--null", "-0", help="stdin is NUL-separated: each record is one message."),
    ] = False,
    paragraphs: Annotated[
        bool,
        typer.Option(
            "--paragraphs",
            help="stdin is blank-line-separated: each block of lines is one message.",
        ),
    ] = False,
    encoding_errors: Annotated[
        str,  # not a Literal: typer would import pydantic to check it (tests/client/test_send.py)
        typer.Option(
            metavar="strict|replace",
            help="Messages that are not UTF-8: strict refuses them (a line of stdin is "
            "reported, status 6), replace sends them with U+FFFD.",
        ),
    ] = "strict",
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Post through the server's HTTP API (one request per message) instead of a "
            "WebSocket: for a proxy that lets only HTTP through.",
        ),
    ] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    token_file: TokenFileOpt = None,
    token_command: TokenCommandOpt = None,
    user: UserOpt = None,
    cafile: CafileOpt = None,
) -> None:
    """Send a message, or one message per line of stdin; exit 0 once the server acked all."""
    from chatctl.client.send import SendOptions, run_send, stdin_is_terminal
    from chatctl.client.settings import check_room

    room = check_room(room)
    if encoding_errors not in ("strict", "replace"):
        raise UsageError(f"--encoding-errors {encoding_errors!r}: strict or replace")
    chosen = [
        flag for flag, on in [("--whole", whole), ("-0", null), ("--paragraphs", paragraphs)] if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"{chosen[0]} and {chosen[1]} cannot be used together")
    texts: list[str] | None = None
    if text and text != ["-"] and chosen:
        raise UsageError(f"{chosen[0]} reads stdin: give no TEXT (or -)")
    if text and text != ["-"]:
        try:  # the bytes of the arguments that were not UTF-8 came as lone surrogates
            raw = " ".join(text).encode("utf-8", "surrogateescape")
            texts = [raw.decode("utf-8", encoding_errors)]
        except UnicodeError:
            raise UsageError(
                "the message is not valid UTF-8 (--encoding-errors replace sends it with U+FFFD)"
            ) from None
    elif not text and stdin_is_terminal():
        raise UsageError("no message: give TEXT, or pipe lines to stdin (or use - for stdin)")
    if token == "-" and texts is None:
        raise UsageError("--token - and messages from stdin cannot share stdin")
    settings = client_settings(server, token, token_file, token_command, user, cafile)
    if http:
        from chatctl.client.httpsend import run_http_send

        if texts is not None and not any(t.strip() for t in texts):
            raise UsageError("the message is empty")
        run_http_send(
            settings,
            room,
            texts,
            kind="action" if me else "text",
            timeout=timeout,
            json_output=json_output,
            encoding_errors=encoding_errors,
        )
        return
    run_send(
        settings,
        SendOptions(
            room=room,
            texts=texts,
            kind="action" if me else "text",
            timeout=timeout,
            json=json_output,
            window=window,
            encoding_errors="replace" if encoding_errors == "replace" else "strict",
            split="whole" if whole else "null" if null else "paragraph" if paragraphs else "line",
        ),
    )
