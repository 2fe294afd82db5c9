"""``chatctl token create|inspect|revoke``: their flags; the work is done in
:mod:`chatctl.tokens` (and, for revoke, :mod:`chatctl.server.revoking`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from chatctl.cli.options import TokenFileOpt, command_app
from chatctl.errors import UsageError
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
    help="Mint, inspect and revoke access tokens (JWT).",
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
  chatctl token create -u hooks -r alerts --webhook --allow-display-name
  chatctl token create --user eve --room '*' --read-room announcements
  chatctl token create --user ops-lead --admin --ttl 1h
  chatctl token create --user mia --room '*' --mod 'team-*'

Every token has an id (its 'jti' claim), which 'chatctl token revoke' names.
--read-room rooms are read-only: joining works, a message is refused
(read_only error). --admin allows POST /api/revoke (docs/http.md). --mod
makes the user a moderator of the matching rooms: /kick, /mute, /ban, /unban,
/unmute and /delete of anyone's message there (docs/protocol.md, "Moderation").

--webhook prints an incoming-webhook URL, http(s)://HOST:PORT/hooks/TOKEN,
that posts to its one --room (plain text, or Slack's {"text": ...} JSON) and
can do nothing else: no reading, no WebSocket (docs/integrations.md). Its
token lives 365d unless --ttl says otherwise; anyone with the URL can post,
so keep it as a secret. With --allow-display-name a post's Slack "username"
is shown as "NAME (via USER)"; without it the username is ignored.

--link prints a link to the server's web page that opens the first --room
that is not a glob, with the token in the link's #fragment (browsers never
send it to the server); the server is the one the client commands use.

Environment:

  CHATCTL_SECRET        the HS256 secret itself
  CHATCTL_SECRET_FILE   a file holding the HS256 secret (as --secret-file)
  CHATCTL_SERVER        the server --link points at (then config.toml)
  XDG_CONFIG_HOME       default secret: $XDG_CONFIG_HOME/chatctl/secret

Exit status: 0 printed, 2 usage error (bad user, TTL or server URL, a
--room or --read-room that matches no room name, no secret).
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
    read_room: Annotated[
        list[str] | None,
        typer.Option(
            "--read-room",
            help="Allow reading, not writing, rooms matching this glob (repeatable; wins over "
            "--room; without --room the token reads these rooms and nothing else).",
            autocompletion=complete_room,
        ),
    ] = None,
    admin: Annotated[
        bool,
        typer.Option("--admin", help="Allow the server's administration API (POST /api/revoke)."),
    ] = False,
    mod: Annotated[
        list[str] | None,
        typer.Option(
            "--mod",
            help="Make the user a moderator (kick, mute, ban, delete) in rooms matching this "
            "glob (repeatable; '*': every room). The claim mod.",
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
    allow_display_name: Annotated[
        bool,
        typer.Option(
            "--allow-display-name",
            help="With --webhook: show a post's Slack 'username' as 'NAME (via USER)'.",
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
    from chatctl.tokens.mint import create_token

    if server is not None and not (link or webhook):
        raise UsageError("--server is used only with --link or --webhook")
    if allow_display_name and not webhook:
        raise UsageError("--allow-display-name is used only with --webhook")
    hook = None
    if webhook:
        from chatctl.protocol import valid_room

        if link:
            raise UsageError("--webhook and --link do not go together")
        if read_room or admin or mod:
            raise UsageError("a --webhook token only posts: no --read-room, --admin or --mod")
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
        read_rooms=read_room or [],
        admin=admin,
        display=allow_display_name,
        dms=not no_dms,
        mod_rooms=mod or [],
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


TOKEN_REVOKE_EPILOG = """\
Examples:

  chatctl token revoke "$LEAKED_TOKEN"
  chatctl token revoke Qm9vX2Jhcl9iYXpf
  chatctl token revoke --user alice
  chatctl token revoke --user alice --before 2026-12-06T09:30Z

The first revokes that token until its exp, the second the token with that id
(jti), the others every token of alice issued until now or until the time.

Run it on the server's host with serve's own settings: it writes where chatctl
serve reads (SQLite: the revocations table of its database; Redis: shared
keys every node reads). Connections using a revoked token are closed within
a second (4002) on every node, and the token is refused from then on (401),
also after restarts. Each entry is forgotten when the tokens it covers expire.

With --server URL it goes through that server's HTTP API instead (POST
/api/revoke, docs/http.md) with an admin token ('token create --admin') from
CHATCTL_TOKEN, --token-file or config.toml: from any host, and for a server
on --broker memory:, which has nothing to write to.

A token without iat counts as made before any time; one made in the same
second as --before counts as made before it.

Environment:

  CHATCTL_BROKER        as --broker
  CHATCTL_REDIS_URL     as --redis-url
  CHATCTL_DATA_DIR      as --data-dir
  XDG_DATA_HOME         default data: $XDG_DATA_HOME/chatctl/chatctl.db
  CHATCTL_TOKEN         with --server: the admin token (or CHATCTL_TOKEN_FILE)

Exit status: 0 revoked, 2 usage error (not a token or a token id, a bad
--before time, a bad user name, the memory broker, no database), 3 with
--server: the token is refused or not an admin token, 4 the store (Redis)
or the server could not be reached.
"""


@app.command("revoke", epilog=TOKEN_REVOKE_EPILOG)
def token_revoke(
    target: Annotated[
        str | None,
        typer.Argument(
            help="The token, its id (jti), or - to read either from stdin.",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Revoke every token of this user instead."),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            help="With --user: tokens issued before this time: now, seconds since 1970 or "
            "ISO 8601 (UTC unless given).",
            show_default="now",
            metavar="TIME",
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="The broker chatctl serve uses (as its --broker).",
            envvar="CHATCTL_BROKER",
            show_envvar=False,
            metavar="URL",
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="As --broker URL (as serve's --redis-url).",
            envvar="CHATCTL_REDIS_URL",
            show_envvar=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="serve's --data-dir (default ~/.local/share/chatctl).",
            envvar="CHATCTL_DATA_DIR",
            show_envvar=False,
            metavar="DIR",
        ),
    ] = None,
    redis_prefix: Annotated[
        str, typer.Option(help="serve's --redis-prefix (Redis).", metavar="PREFIX")
    ] = "chatctl",
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            "-s",
            metavar="URL",
            help="Revoke through this server's HTTP API instead (POST /api/revoke), with an "
            "admin token from CHATCTL_TOKEN, --token-file or config.toml.",
            show_default=False,
        ),
    ] = None,
    token_file: TokenFileOpt = None,
) -> None:
    """Revoke a token, or every token of a user issued before a time."""
    from chatctl.server.revoking import revocation, revoke_in_store, store_url

    if target == "-":
        target = sys.stdin.readline().strip()
    entry = revocation(target, user=user, before=before)
    if server is None:
        if token_file is not None:
            raise UsageError("--token-file goes with --server")
        url = store_url(broker=broker, redis_url=redis_url, data=data_dir)
        where = revoke_in_store(entry, url, prefix=redis_prefix)
        print(f"revoked {entry.describe()} (in {where})")
        return
    from chatctl.cli.options import client_settings
    from chatctl.client.revoke import revoke_over_http

    body: dict[str, object] = {"user": entry.key, "before": entry.before}
    if entry.kind == "jti":
        body = {"token": target} if target and "." in target else {"jti": entry.key}
    settings = client_settings(server, None, token_file, None, None, None)
    answer = revoke_over_http(settings, body)
    print(f"revoked {answer.get('revoked', entry.describe())} (through {settings.server})")
