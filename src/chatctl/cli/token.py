"""``chatctl token create|inspect``: their flags; the work is done in :mod:`chatctl.tokens`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chatctl.cli.options import command_app
from chatctl.recent import complete_room
from chatctl.status import ExitStatus

TOKEN_EPILOG = """\
Examples:

  chatctl token create --user alice --ttl 12h
  chatctl token create --user bob | chatctl token inspect -

Environment:

  CHATCTL_SECRET        the HS256 secret itself
  CHATCTL_SECRET_FILE   a file holding the HS256 secret (as --secret-file)
  XDG_CONFIG_HOME       default secret: $XDG_CONFIG_HOME/chatctl/secret
"""

SecretFileOpt = Annotated[
    Path | None,
    typer.Option(
        help="HS256 secret file (default: as chatctl serve).",
        envvar="CHATCTL_SECRET_FILE",
        show_envvar=False,
    ),
]

app = command_app(
    name="token",
    help="Mint and inspect access tokens (JWT).",
    epilog=TOKEN_EPILOG,
    no_args_is_help=True,
)


TOKEN_CREATE_EPILOG = """\
Examples:

  chatctl token create --user alice
  chatctl token create --user deploy-bot --room ops --room 'team-*' --ttl 30d
  export CHATCTL_TOKEN=$(chatctl token create --user alice)
  chatctl token create --user carol --room general --ttl 8h --link
  chatctl token create --user grafana --room alerts --webhook

--webhook prints an incoming-webhook URL, http(s)://HOST:PORT/hooks/TOKEN,
that posts to its one --room (plain text, or Slack's {"text": ...} JSON) and
can do nothing else: no reading, no WebSocket (docs/integrations.md). Its
token lives 365d unless --ttl says otherwise; anyone with the URL can post,
so keep it as a secret.

--link prints a link to the server's web page that opens the first --room
that is not a glob, with the token in the link's #fragment (browsers never
send it to the server); the server is the one the client commands use.

Environment:

  CHATCTL_SECRET        the HS256 secret itself
  CHATCTL_SECRET_FILE   a file holding the HS256 secret (as --secret-file)
  CHATCTL_SERVER        the server --link points at (then config.toml)
  XDG_CONFIG_HOME       default secret: $XDG_CONFIG_HOME/chatctl/secret

Exit status: 0 printed, 2 usage error (bad user, TTL or server URL, a
--room that matches no room name, no secret).
"""


@app.command("create", epilog=TOKEN_CREATE_EPILOG)
def token_create(
    user: Annotated[str, typer.Option("--user", "-u", help="User name (the 'sub' claim).")],
    room: Annotated[
        list[str] | None,
        typer.Option(
            "--room",
            "-r",
            help="Allow only rooms matching this glob (repeatable; one that can match no "
            "room name is refused).",
            autocompletion=complete_room,
        ),
    ] = None,
    ttl: Annotated[
        str | None,
        typer.Option(
            help="Lifetime: 90s, 15m, 12h, 7d, 1w (default 24h; 365d with --webhook).",
            show_default=False,
        ),
    ] = None,
    secret_file: SecretFileOpt = None,
    private_key: Annotated[
        Path | None, typer.Option(help="Sign with this PEM private key (RS256/ES256).")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Set the 'iss' claim.")] = None,
    audience: Annotated[str | None, typer.Option(help="Set the 'aud' claim.")] = None,
    link: Annotated[
        bool, typer.Option("--link", help="Print a web page link that carries the token.")
    ] = False,
    webhook: Annotated[
        bool,
        typer.Option(
            "--webhook",
            help="Print an incoming-webhook URL that only posts to its one --room.",
        ),
    ] = False,
    no_dms: Annotated[
        bool,
        typer.Option("--no-dms", help="Forbid direct messages (/ws/@USER): the claim dms: false."),
    ] = False,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            "-s",
            help="With --link: the server, ws:// or wss:// (env CHATCTL_SERVER, then "
            "config.toml; default ws://127.0.0.1:8000).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a new signed token for USER (or a link that opens a room with it)."""
    from chatctl.client.settings import join_link
    from chatctl.errors import UsageError
    from chatctl.tokens.mint import create_token

    if server is not None and not (link or webhook):
        raise UsageError("--server is used only with --link or --webhook")
    hook = None
    if webhook:
        from chatctl.protocol import valid_room

        if link:
            raise UsageError("--webhook and --link do not go together")
        if room is None or len(room) != 1 or not valid_room(room[0]):
            raise UsageError("--webhook needs exactly one --room, a room name (not a glob)")
        hook = room[0]
    token = create_token(
        user=user,
        rooms=room or [],
        ttl=ttl or ("365d" if webhook else "24h"),
        secret_file=secret_file,
        private_key=private_key,
        issuer=issuer,
        audience=audience,
        hook=hook,
        dms=not no_dms,
    )
    if webhook:
        from chatctl.client.settings import hook_url

        print(hook_url(token, server=server))
    else:
        print(join_link(token, room or [], server=server) if link else token)


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


@app.command("inspect", epilog=TOKEN_INSPECT_EPILOG)
def token_inspect(
    token: Annotated[str, typer.Argument(help="The token, or - to read it from stdin.")],
    secret_file: SecretFileOpt = None,
    public_key: Annotated[
        Path | None, typer.Option(help="Verify with this PEM public key instead.")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Require this 'iss'.")] = None,
    audience: Annotated[str | None, typer.Option(help="Require this 'aud'.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a token's claims and whether this server's key verifies it."""
    from chatctl.tokens.inspect import inspect_token

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
