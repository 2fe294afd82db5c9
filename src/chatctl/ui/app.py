"""The interactive ``chatctl join`` on a terminal.

Two tasks share the terminal: the network task prints incoming events, the input task awaits
``PromptSession.prompt_async()``. Both run inside ``patch_stdout(raw=True)``, so printed lines
(ANSI strings rendered by :mod:`chatctl.ui.render`) go above the input line, which is then
redrawn intact. prompt-toolkit restores the terminal on every way out, SIGTERM and SIGHUP
included (they end the session like /quit).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import OrderedDict
from typing import Any, TypeVar

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout

from chatctl.client.events import (
    Connected,
    Disconnected,
    Event,
    Reconnecting,
    Rejected,
    TokenExpired,
    TokenProblem,
    TokenRenewed,
)
from chatctl.client.frames import UserList
from chatctl.client.join import clock, missed_notice
from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.config import state_dir
from chatctl.errors import ConfigError
from chatctl.protocol import ErrorFrame, Message, MessageKind, Presence, Who
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.keys import create_key_bindings
from chatctl.ui.render import Renderer, want_color

T = TypeVar("T")
D = TypeVar("D")

#: Seconds a join waits before it is shown; a leave in that time hides both.
PRESENCE_DELAY = 2.0
#: Names remembered for completion (most recently active first).
MAX_KNOWN_USERS = 500


def _setting(config: dict[str, Any], key: str, kind: type[T], default: D) -> T | D:
    """``[join] key`` from config.toml, checked to be a ``kind``."""
    value = config.get(key, default)
    if value is default or (isinstance(value, kind) and not (kind is int and value is True)):
        return value
    raise ConfigError(f"config.toml: [join] {key} must be a {kind.__name__}, not {value!r}")


def input_history() -> History:
    """Up/Down history in ``$XDG_STATE_HOME/chatctl/history`` (in memory if unwritable)."""
    path = state_dir() / "history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


class ChatUI:
    def __init__(
        self,
        settings: ClientSettings,
        room: str,
        *,
        since: int | None = None,
        history: int | None = None,
    ) -> None:
        config: dict[str, Any] = dict(settings.config.get("join", {}))
        self.settings = settings
        self.room = room
        self.bell = _setting(config, "bell", bool, True)
        self.history = history if history is not None else _setting(config, "history", int, None)
        self.stream = self._stream(room, since)
        self.me = settings.user_hint or ""
        self.present: set[str] = set()
        #: the token could not be renewed or was refused; the next renewal says it is over
        self.token_trouble = False
        self.active: OrderedDict[str, None] = OrderedDict()
        colors = _setting(config, "colors", dict, {})
        _setting(config, "color", bool, True)
        self.renderer = Renderer(
            me=self.me,
            color=want_color(config),
            colors={str(k): str(v) for k, v in colors.items()},
            timestamp=_setting(config, "timestamp", str, "%H:%M:%S"),
        )
        self.completer = ChatCompleter(
            commands.completion_table(),
            self.user_names,
            {"/bell": lambda: ["on", "off"], "/help": lambda: [c.name for c in commands.COMMANDS]},
        )
        self.session: PromptSession[str] = PromptSession(
            message=self._prompt,
            completer=self.completer,
            complete_while_typing=False,
            key_bindings=create_key_bindings(),
            history=input_history(),
            enable_suspend=True,
        )
        self._joins: dict[str, asyncio.TimerHandle] = {}
        self._day: str | None = None
        self.stop = asyncio.Event()

    def _prompt(self) -> str:
        return f"[{self.room}] " if self.stream.connected else f"[{self.room} offline] "

    def _stream(self, room: str, since: int | None) -> RoomStream:
        return RoomStream(self.settings, room, since=since, history=self.history)

    # ------------------------------------------------------------------ output

    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def info(self, text: str) -> None:
        self.write(self.renderer.system(text))

    def error(self, text: str) -> None:
        self.write(self.renderer.system(text, error=True))

    def clear(self) -> None:
        self.session.app.renderer.clear()

    def user_names(self) -> list[str]:
        recent = [u for u in reversed(self.active) if u != self.me]
        rest = sorted(self.present - set(recent) - {self.me})
        return recent + rest

    def _active(self, user: str) -> None:
        self.active.pop(user, None)
        self.active[user] = None
        if len(self.active) > MAX_KNOWN_USERS:
            self.active.popitem(last=False)

    # ------------------------------------------------------------------ input side

    async def send_text(self, text: str, kind: MessageKind = "text") -> None:
        if not text.strip():
            return
        if not self.stream.connected:
            self.info("not connected: the message will be sent when the connection is back")
        await self.stream.send(text, kind)

    async def request_who(self) -> None:
        if not await self.stream.request(Who()):
            self.error("not connected")

    async def switch_room(self, room: str) -> None:
        if room == self.room:
            self.info(f"already in {room}")
            return
        old = self.stream
        if old.outbox:
            self.error(f"{len(old.outbox)} unsent messages to {self.room} dropped")
        self.room = room
        self.stream = self._stream(room, None)
        self.present.clear()
        await old.close()

    async def confirm_paste(self, text: str) -> bool:
        lines = text.count("\n") + 1
        try:
            answer = await PromptSession[str]().prompt_async(
                f"send this {lines}-line text as one message? [y/N] "
            )
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")

    async def handle_line(self, line: str) -> bool:
        multiline = "\n" in line.strip() and not line.startswith("/")
        if multiline and not await self.confirm_paste(line):
            self.info("not sent (edit it with Up)")
            return True
        return await commands.dispatch(self, line)

    # ------------------------------------------------------------------ network side

    async def network(self) -> None:
        """Show the stream's events; after a /join, go on with the new room's stream."""
        while True:
            stream = self.stream
            async with stream:
                async for event in stream:
                    self._event(stream, event)
            if self.stream is stream:
                return

    def _event(self, stream: RoomStream, event: Event) -> None:
        if isinstance(event, Message):
            self._message(event, live=True)
        elif isinstance(event, Presence):
            if event.user != self.me:  # our own arrival: the "joined" line already said it
                self._presence(event.user, event.event, event.ts)
        elif isinstance(event, UserList):
            self.present = set(event.users)
            self.info(f"users in {self.room} ({len(event.users)}): {' '.join(event.users)}")
        elif isinstance(event, Rejected):
            self.error(f"not sent: {event.error.reason}")
        elif isinstance(event, ErrorFrame):
            self.error(f"server: {event.reason}")
        elif isinstance(event, Connected):
            self.session.app.invalidate()
            self._welcome(stream, event)
        elif isinstance(event, Reconnecting):
            self.error(
                f"cannot connect to {stream.display_url}: {event.reason}; "
                f"retrying in {event.delay:.1f} s"
            )
        elif isinstance(event, Disconnected):
            self.session.app.invalidate()
            self.error(f"{event.reason}; reconnecting")
        elif isinstance(event, TokenRenewed):
            if self.token_trouble:  # a routine renewal is not news
                self.token_trouble = False
                self.info(f"token renewed from {event.origin}, valid until {clock(event.exp)}")
        elif isinstance(event, TokenExpired):
            self.token_trouble = True
            self.session.app.invalidate()
            if event.renewable:
                self.error(
                    f"{event.reason}; offline until {event.origin} holds a new token "
                    "(what you type is sent then)"
                )
        elif isinstance(event, TokenProblem):
            self.token_trouble = True
            self.error(event.reason)

    def _welcome(self, stream: RoomStream, event: Connected) -> None:
        welcome, resume = event.welcome, event.resume
        self.me = self.renderer.me = welcome.user or self.me
        self.present = set(welcome.users)
        if resume.reconnect:
            self.info(f"reconnected to {stream.room}")
        if resume.missed:
            self.error(missed_notice(resume, stream.room))
        for m in resume.new_history:
            self._message(m, live=False)
        if not resume.reconnect:
            users = sorted(self.present)
            self.info(
                f"joined {stream.room} as {self.me}; {len(users)} here: {', '.join(users)}"
                " (/help lists commands)"
            )

    def _presence(self, user: str, event: str, ts: Any) -> None:
        """Show joins and leaves, except brief visits: a join is shown after
        :data:`PRESENCE_DELAY` seconds, and a leave within that time hides both (each
        ``chatctl send`` connects, posts and leaves: its message is what matters)."""
        room = self.room
        if event == "join":
            self.present.add(user)
            if user in self._joins:
                return
            line = self.renderer.system(f"{user} joined {room}", ts=ts)
            self._joins[user] = asyncio.get_running_loop().call_later(
                PRESENCE_DELAY, self._show_join, user, line
            )
            return
        self.present.discard(user)
        pending = self._joins.pop(user, None)
        if pending is not None:
            pending.cancel()
            return
        self.write(self.renderer.system(f"{user} left {room}", ts=ts))

    def _show_join(self, user: str, line: str) -> None:
        if self._joins.pop(user, None) is not None:
            self.write(line)

    def _message(self, message: Message, *, live: bool) -> None:
        self._active(message.user)
        self._day_marker(message.ts)
        line, mention = self.renderer.message(message)
        self.write(line)
        if mention and live and self.bell:
            sys.stdout.write("\a")
            sys.stdout.flush()

    def _day_marker(self, ts: Any) -> None:
        """A ``-!- Tuesday 24 November 2026`` line before the first message of another day
        (the time column shows no date)."""
        try:
            day = time.strftime("%A %d %B %Y", time.localtime(float(ts)))
        except (TypeError, ValueError, OverflowError):
            return
        today = time.strftime("%A %d %B %Y")
        if day != (self._day or today):
            self.write(self.renderer.system(day, ts=float(ts)))
        self._day = day

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        with patch_stdout(raw=True):
            net = asyncio.create_task(self.network())
            stop = asyncio.create_task(self.stop.wait())
            try:
                while True:
                    prompt = asyncio.create_task(self.session.prompt_async())
                    await asyncio.wait({prompt, net, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not prompt.done():
                        prompt.cancel()
                        with contextlib.suppress(asyncio.CancelledError, EOFError):
                            await prompt
                        if net.done():
                            net.result()  # a final error (e.g. token expired): re-raised
                        return
                    try:
                        line = prompt.result()
                    except (EOFError, KeyboardInterrupt):
                        return
                    if not await self.handle_line(line):
                        return
            finally:
                for task in (net, stop):
                    task.cancel()
                await asyncio.gather(net, stop, return_exceptions=True)
                for sig in (signal.SIGTERM, signal.SIGHUP):
                    loop.remove_signal_handler(sig)


def run_interactive(
    settings: ClientSettings, room: str, *, since: int | None = None, history: int | None = None
) -> None:
    async def main() -> None:
        await ChatUI(settings, room, since=since, history=history).run()

    asyncio.run(main())
