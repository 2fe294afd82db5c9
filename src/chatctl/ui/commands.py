"""The ``/commands`` of the interactive client. Each handler gets the UI and the argument text.

A line starting with ``//`` is sent as a message starting with ``/`` (as in WeeChat), and so
is the argument of ``/say``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from chatctl.protocol import ROOM_RULE, Delete, MessageKind, Moderate, is_conversation, valid_room
from chatctl.ui.direct import target
from chatctl.ui.keys import KEYS_HELP
from chatctl.ui.moderate import USAGE, delete_command, moderation_command
from chatctl.ui.notify import Highlights, highlight_command, unhighlight_command


class CommandTarget(Protocol):
    """What the commands may use of the chat screen (:class:`chatctl.ui.app.ChatUI`
    implements it, and passes itself to :func:`dispatch`): commands never import the
    application."""

    @property
    def room(self) -> str:
        """The room the screen shows."""

    #: ring the terminal bell when a message mentions the user
    bell: bool
    #: the words that alert as the user's name does (``/highlight``)
    highlights: Highlights

    def info(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def clear(self) -> None: ...

    async def send_text(self, text: str, kind: MessageKind = "text") -> None: ...

    async def request_who(self) -> None: ...

    async def switch_room(self, room: str) -> None:
        """Show ``room``'s window, opening it first if there is none."""

    async def send_to(self, room: str, text: str) -> None:
        """Send ``text`` to ``room`` (a conversation, ``@USER``) from its window, opened
        in the background if there is none."""

    async def part(self) -> bool:
        """Leave the room shown and close its window; False when it was the last one."""

    def show_window(self, number: int) -> None: ...

    def list_windows(self) -> None: ...

    async def reconnect(self) -> None: ...

    async def load_older(self, count: int | None = None) -> None: ...

    async def moderate(self, frame: Moderate | Delete, what: str) -> None:
        """Send a moderation request from the window shown (:mod:`chatctl.ui.moderate`)."""

    def own_last(self) -> int | None:
        """The id of your last message the window shown holds (not deleted), if any."""


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    run: Callable[[CommandTarget, str], Awaitable[bool]]
    aliases: tuple[str, ...] = ()


async def _help(ui: CommandTarget, arg: str) -> bool:
    wanted = arg.strip().lstrip("/").lower()
    if wanted:
        cmd = lookup(wanted)
        if cmd is None:
            ui.error(f"no command /{wanted}")
        else:
            ui.info(f"{cmd.usage} - {cmd.help}")
        return True
    ui.info("commands (Tab completes them, and user names):")
    for cmd in COMMANDS:
        alias = f" (also {', '.join('/' + a for a in cmd.aliases)})" if cmd.aliases else ""
        ui.info(f"  {cmd.usage:<16} {cmd.help}{alias}")
    ui.info("  //text           send text that starts with /")
    ui.info(KEYS_HELP)
    return True


async def _who(ui: CommandTarget, arg: str) -> bool:
    await ui.request_who()
    return True


async def _me(ui: CommandTarget, arg: str) -> bool:
    if not arg.strip():
        ui.error("usage: /me ACTION  (e.g. /me waves)")
    else:
        await ui.send_text(arg.strip(), kind="action")
    return True


async def _say(ui: CommandTarget, arg: str) -> bool:
    if not arg.strip():
        ui.error("usage: /say TEXT")
    else:
        await ui.send_text(arg)
    return True


async def _quit(ui: CommandTarget, arg: str) -> bool:
    return False


async def _clear(ui: CommandTarget, arg: str) -> bool:
    ui.clear()
    return True


async def _bell(ui: CommandTarget, arg: str) -> bool:
    value = arg.strip().lower()
    if value in ("on", "off"):
        ui.bell = value == "on"
    elif value:
        ui.error("usage: /bell [on|off]")
        return True
    ui.info(f"bell on mentions is {'on' if ui.bell else 'off'}")
    return True


async def _join(ui: CommandTarget, arg: str) -> bool:
    room = arg.strip().lstrip("#")
    if not room:
        ui.info(f"you are in {ui.room}; /join ROOM opens ROOM in a window of its own")
    elif is_conversation(room):
        return await _query(ui, room)
    elif not valid_room(room):
        ui.error(f"invalid room name {room!r}: {ROOM_RULE}")
    else:
        await ui.switch_room(room)
    return True


async def _query(ui: CommandTarget, arg: str) -> bool:
    user = arg.strip()
    if not user or " " in user:
        ui.error("usage: /query USER  (a window for your direct messages with USER)")
        return True
    try:
        name = target(user)
    except ValueError as exc:
        ui.error(str(exc))
        return True
    await ui.switch_room(name)
    return True


async def _msg(ui: CommandTarget, arg: str) -> bool:
    user, _, text = arg.strip().partition(" ")
    if not user or not text.strip():
        ui.error("usage: /msg USER TEXT  (a direct message; /query USER opens its window)")
        return True
    try:
        name = target(user)
    except ValueError as exc:
        ui.error(str(exc))
        return True
    await ui.send_to(name, text.strip())
    return True


async def _part(ui: CommandTarget, arg: str) -> bool:
    return await ui.part()


async def _window(ui: CommandTarget, arg: str) -> bool:
    value = arg.strip()
    if not value:
        ui.list_windows()
    elif value.isdigit() and int(value) > 0:
        ui.show_window(int(value))
    else:
        ui.error("usage: /window [N]  (N from 1; Alt-1 … Alt-9 too)")
    return True


async def _reconnect(ui: CommandTarget, arg: str) -> bool:
    await ui.reconnect()
    return True


async def _history(ui: CommandTarget, arg: str) -> bool:
    value = arg.strip()
    if value and not (value.isdigit() and 1 <= int(value) <= MAX_HISTORY):
        ui.error(f"usage: /history [N]  (N from 1 to {MAX_HISTORY}; PageUp loads 50)")
    else:
        await ui.load_older(int(value) if value else None)
    return True


#: the most messages ``/history N`` asks for at once (the protocol's limit)
MAX_HISTORY = 200

COMMANDS: tuple[Command, ...] = (
    Command("help", "/help [COMMAND]", "list commands, or explain one", _help),
    Command("who", "/who", "list the users in the room", _who, ("names",)),
    Command("me", "/me ACTION", "send an action: * you ACTION", _me),
    Command("join", "/join ROOM", "open ROOM in a window and show it (Tab: recent rooms)", _join),
    Command("msg", "/msg USER TEXT", "send USER a direct message", _msg),
    Command("query", "/query USER", "open the window of your direct messages with USER", _query),
    Command("part", "/part", "leave this room and close its window (the last: quit)", _part),
    Command("window", "/window [N]", "show window N, or list the windows", _window),
    Command("history", "/history [N]", "load N older messages from the server", _history),
    Command("reconnect", "/reconnect", "connect again now (offline: do not wait)", _reconnect),
    Command("clear", "/clear", "clear the screen", _clear),
    Command("bell", "/bell [on|off]", "ring the terminal bell when you are mentioned", _bell),
    Command(
        "highlight",
        "/highlight [WORD]",
        "alert on WORD as on your name; -WORD removes it; alone: list",
        highlight_command,
    ),
    Command("unhighlight", "/unhighlight WORD", "stop alerting on WORD", unhighlight_command),
    Command(
        "kick",
        USAGE["kick"],
        "moderator: close USER's connections to the room",
        moderation_command("kick"),
    ),
    Command(
        "mute",
        USAGE["mute"],
        "moderator: refuse USER's messages for DURATION (10m, 2h, 1d)",
        moderation_command("mute"),
    ),
    Command("unmute", USAGE["unmute"], "moderator: end USER's mute", moderation_command("unmute")),
    Command(
        "ban",
        USAGE["ban"],
        "moderator: keep USER out of the room (for DURATION, or until /unban)",
        moderation_command("ban"),
    ),
    Command("unban", USAGE["unban"], "moderator: end USER's ban", moderation_command("unban")),
    Command(
        "delete",
        USAGE["delete"],
        "delete message ID (yours; any as a moderator); alone: your last one",
        delete_command,
    ),
    Command("say", "/say TEXT", "send TEXT as is, even if it starts with /", _say),
    Command("quit", "/quit", "leave (Ctrl-D on an empty line too)", _quit, ("exit", "q")),
)


def lookup(name: str) -> Command | None:
    for cmd in COMMANDS:
        if name == cmd.name or name in cmd.aliases:
            return cmd
    return None


def completion_table() -> dict[str, str]:
    """``/name`` -> help, for the completer (aliases included, one-letter ones excepted)."""
    table: dict[str, str] = {}
    for cmd in COMMANDS:
        for name in (cmd.name, *(a for a in cmd.aliases if len(a) > 1)):
            table["/" + name] = cmd.help
    return table


async def dispatch(ui: CommandTarget, line: str) -> bool:
    """Run one input line; return False when the client should quit."""
    if line.startswith("//"):
        await ui.send_text(line[1:])
        return True
    if not line.startswith("/"):
        await ui.send_text(line)
        return True
    name, _, arg = line[1:].partition(" ")
    cmd = lookup(name.lower())
    if cmd is None:
        ui.error(f"unknown command /{name}: /help lists them (//{name} sends it as text)")
        return True
    return await cmd.run(ui, arg)
