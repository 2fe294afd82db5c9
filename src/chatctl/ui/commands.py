"""The ``/commands`` of the interactive client. Each handler gets the UI and the argument text.

A line starting with ``//`` is sent as a message starting with ``/`` (as in WeeChat), and so
is the argument of ``/say``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from chatctl.protocol import ROOM_RULE, MessageKind, valid_room
from chatctl.ui.keys import KEYS_HELP


class CommandTarget(Protocol):
    """What the commands may use of the chat screen (:class:`chatctl.ui.app.ChatUI`
    implements it, and passes itself to :func:`dispatch`): commands never import the
    application."""

    #: the room the screen is in
    room: str
    #: ring the terminal bell when a message mentions the user
    bell: bool

    def info(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def clear(self) -> None: ...

    async def send_text(self, text: str, kind: MessageKind = "text") -> None: ...

    async def request_who(self) -> None: ...

    async def switch_room(self, room: str) -> None: ...


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
        ui.info(f"you are in {ui.room}; /join ROOM switches rooms")
    elif not valid_room(room):
        ui.error(f"invalid room name {room!r}: {ROOM_RULE}")
    else:
        await ui.switch_room(room)
    return True


COMMANDS: tuple[Command, ...] = (
    Command("help", "/help [COMMAND]", "list commands, or explain one", _help),
    Command("who", "/who", "list the users in the room", _who, ("names",)),
    Command("me", "/me ACTION", "send an action: * you ACTION", _me),
    Command("join", "/join ROOM", "leave this room and join ROOM (Tab: recent rooms)", _join),
    Command("clear", "/clear", "clear the screen", _clear),
    Command("bell", "/bell [on|off]", "ring the terminal bell when you are mentioned", _bell),
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
