"""Declarations the command modules share: :func:`command_app`, and the options ``chatctl join``
and ``chatctl send`` take to say where the server is and who you are (resolved by
:func:`chatctl.client.settings.resolve_settings`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from chatctl.client.settings import ClientSettings


def command_app(**attrs: Any) -> typer.Typer:
    """The Typer of one subcommand (or of the ``token`` group). The root app owns
    ``--install-completion`` and ``--show-completion``, so it adds none of its own."""
    return typer.Typer(add_completion=False, pretty_exceptions_enable=False, **attrs)


CLIENT_ENV = (
    "Environment: CHATCTL_SERVER, CHATCTL_TOKEN, CHATCTL_TOKEN_FILE,\n"
    "CHATCTL_TOKEN_COMMAND, CHATCTL_CAFILE, CHATCTL_CONFIG, XDG_CONFIG_HOME,\n"
    "XDG_STATE_HOME. Token flags beat the environment, which beats config.toml."
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
        help="Read the token from this file, again at every reconnect and before it expires "
        "(env CHATCTL_TOKEN_FILE).",
        show_default=False,
    ),
]
TokenCommandOpt = Annotated[
    str | None,
    typer.Option(
        help="Run this shell command for a token (its stdout), again at every reconnect and "
        "before the token expires (env CHATCTL_TOKEN_COMMAND).",
        show_default=False,
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


def client_settings(
    server: str | None,
    token: str | None,
    token_file: Path | None,
    token_command: str | None,
    user: str | None,
    cafile: Path | None,
) -> ClientSettings:
    from chatctl.client.settings import resolve_settings

    return resolve_settings(
        server=server,
        token=token,
        token_file=token_file,
        token_command=token_command,
        user=user,
        cafile=cafile,
    )
