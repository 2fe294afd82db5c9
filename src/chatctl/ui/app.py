"""The interactive ``chatctl join`` on a terminal.

Two tasks share the terminal: the network task shows the events of the room's
:class:`~chatctl.client.stream.RoomStream`, the input task awaits
``PromptSession.prompt_async()``. Both run inside ``patch_stdout(raw=True)``, so printed lines
(ANSI strings rendered by :mod:`chatctl.ui.render`) go above the input line, which is then
redrawn intact. Under it, the status line (:mod:`chatctl.ui.toolbar`) shows the room, its
users, the connection and unread mentions: connection attempts change it instead of printing
lines. A line sent is erased from the input (``erase_when_done``): the server's copy is the
one shown. prompt-toolkit restores the terminal on every way out, SIGTERM and SIGHUP included
(they end the session like /quit).

With ``TERM=dumb`` there is no cursor movement to put lines above the input: each line starts
a line of its own and the prompt, with what was typed, is written again after it
(:mod:`chatctl.ui.output`); there is no status line, so connection changes are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import OrderedDict
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal

from chatctl.client.events import (
    Acked,
    Connected,
    Connecting,
    Disconnected,
    Event,
    Reconnecting,
    Rejected,
    TokenEvent,
    TokenExpired,
)
from chatctl.client.join import missed_notice
from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.errors import AuthError, UsageError
from chatctl.protocol import (
    ErrorFrame,
    Message,
    MessageKind,
    Presence,
    PresenceBatch,
    UserList,
    Who,
)
from chatctl.recent import recent_rooms
from chatctl.tokens.renewal import TokenTrouble
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.config import JoinConfig, input_history
from chatctl.ui.keys import create_key_bindings
from chatctl.ui.output import LineOutput
from chatctl.ui.presence import QuietPresence
from chatctl.ui.render import Renderer, color_mode
from chatctl.ui.style import create_style
from chatctl.ui.toolbar import Link, Status, create_toolbar

#: Names remembered for completion (most recently active first).
MAX_KNOWN_USERS = 500


class ChatUI:
    def __init__(
        self,
        settings: ClientSettings,
        room: str,
        *,
        since: int | None = None,
        history: int | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        """``connect_timeout``: seconds the first connection may take before the session
        ends with :class:`~chatctl.errors.ConnectError` (None: retry for ever); once
        connected, the client reconnects for as long as it runs."""
        config = JoinConfig.from_config(settings.config)
        self.settings = settings
        self.room = room
        self.bell = config.bell
        self.history = history if history is not None else config.history
        self.stream = self._stream(room, since, connect_timeout)
        self.me = settings.user_hint or ""
        self.present: set[str] = set()
        #: the token could not be renewed or was refused; the next renewal says it is over
        self.token_trouble = TokenTrouble()
        self.active: OrderedDict[str, None] = OrderedDict()
        self.status = Status(room)
        self.dumb = is_dumb_terminal()
        mode = color_mode({"color": config.color})
        self.renderer = Renderer(
            me=self.me,
            color=mode == "color",
            emphasis=mode == "mono",
            colors=config.colors,
            timestamp=config.timestamp,
            width=None if self.dumb else self._columns,
        )
        self.completer = ChatCompleter(
            commands.completion_table(),
            self.user_names,
            {
                "/bell": lambda: ["on", "off"],
                "/help": lambda: [c.name for c in commands.COMMANDS],
                "/join": lambda: [r for r in recent_rooms() if r != self.room],
            },
        )
        self.session: PromptSession[str] = PromptSession(
            message=self._prompt,
            completer=self.completer,
            complete_while_typing=False,
            key_bindings=create_key_bindings(on_paste=self._on_paste),
            history=input_history(),
            enable_suspend=True,
            erase_when_done=True,
            bottom_toolbar=None if self.dumb else create_toolbar(self._status),
            style=create_style(),
        )
        self.presence = QuietPresence(self.write)
        self._day: str | None = None
        self._pasted_newline = False
        self._clear_pending = False
        self.output = LineOutput(
            dumb=self.dumb, prompt_line=lambda: self._prompt() + self.session.default_buffer.text
        )
        self._ticker: asyncio.TimerHandle | None = None
        self.stop = asyncio.Event()

    def _prompt(self) -> str:
        return f"[{self.room}] "

    def _stream(self, room: str, since: int | None, timeout: float | None) -> RoomStream:
        return RoomStream(
            self.settings, room, since=since, history=self.history, connect_timeout=timeout
        )

    def _status(self) -> Status:
        status = self.status
        status.room = self.room
        status.users = len(self.present)
        status.queued = len(self.stream.outbox)
        return status

    def _columns(self) -> int:
        return self.session.app.output.get_size().columns

    # ------------------------------------------------------------------ output

    def write(self, line: str) -> None:
        self.output.write(line)

    def info(self, text: str) -> None:
        self.write(self.renderer.system(text))

    def error(self, text: str) -> None:
        self.write(self.renderer.system(text, error=True))

    def clear(self) -> None:
        """Clear the screen when the next prompt is running: clearing asks the terminal where
        the cursor is, and the answer must be read by prompt-toolkit, not echoed by a tty in
        cooked mode between two prompts (``^[[1;1R``)."""
        self._clear_pending = True

    def user_names(self) -> list[str]:
        recent = [u for u in reversed(self.active) if u != self.me]
        rest = sorted(self.present - set(recent) - {self.me})
        return recent + rest

    def _active(self, user: str) -> None:
        self.active.pop(user, None)
        self.active[user] = None
        if len(self.active) > MAX_KNOWN_USERS:
            self.active.popitem(last=False)

    def _refresh(self) -> None:
        self.session.app.invalidate()

    # ------------------------------------------------------------------ input side

    def _on_paste(self, text: str) -> None:
        self._pasted_newline = self._pasted_newline or "\n" in text

    def _pre_run(self) -> None:
        if self._clear_pending:
            self._clear_pending = False
            # after the prompt has put the terminal in raw mode (pre_run comes before that)
            asyncio.get_running_loop().call_soon(self._clear_now)

    def _clear_now(self) -> None:
        self.session.app.renderer.clear()
        self._refresh()

    async def send_text(self, text: str, kind: MessageKind = "text") -> None:
        if not text.strip():
            return
        self.status.mentions = 0  # you answered: the mentions are read
        if not self.stream.connected and self.dumb:
            self.info("not connected: the message will be sent when the connection is back")
        await self.stream.send(text, kind)
        self._refresh()

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
        self.stream = self._stream(room, None, None)
        self.present.clear()
        self.status = Status(room)
        self._refresh()
        await old.close()

    async def confirm_paste(self, text: str) -> bool:
        lines = text.count("\n") + 1
        try:
            answer = await PromptSession[str](erase_when_done=True).prompt_async(
                f"send this {lines}-line text as one message? [y/N] "
            )
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")

    async def handle_line(self, line: str) -> bool:
        pasted = self._pasted_newline and "\n" in line.strip() and not line.startswith("/")
        if pasted and not await self.confirm_paste(line):
            self.info("not sent (edit it with Up)")
            return True
        return await commands.dispatch(self, line)

    # ------------------------------------------------------------------ network side

    async def network(self) -> None:
        """Show the stream's events; after a /join, go on with the new room's stream (or
        back to the previous room when the new one is refused)."""
        previous: str | None = None
        while True:
            stream = self.stream
            try:
                async with stream:
                    async for event in stream:
                        self._event(stream, event)
            except (AuthError, UsageError) as exc:
                if previous is None or self.stream is not stream:
                    raise
                self.error(f"cannot join {stream.room}: {exc}")
                self.room, previous = previous, None
                self.stream = self._stream(self.room, None, None)
                continue
            if self.stream is stream:
                return
            previous = stream.room

    def _event(self, stream: RoomStream, event: Event) -> None:
        if isinstance(event, Message):
            self._message(event, live=True)
        elif isinstance(event, Presence | PresenceBatch):
            changes = event.presences() if isinstance(event, PresenceBatch) else [event]
            for change in changes:
                if change.user != self.me:  # our own arrival: the "joined" line already said it
                    self._presence(change.user, change.event, change.ts)
        elif isinstance(event, UserList):
            self.present = set(event.users)
            self.info(f"users in {self.room} ({len(event.users)}): {' '.join(event.users)}")
        elif isinstance(event, Rejected):
            self.error(f"not sent: {event.error.reason}")
        elif isinstance(event, ErrorFrame):
            self.error(f"server: {event.reason}")
        elif isinstance(event, Connected):
            stream.connect_timeout = None  # connected once: reconnect for as long as it runs
            self._link(Link.CONNECTED)
            self._welcome(stream, event)
        elif isinstance(event, Connecting):
            self._link(Link.CONNECTING)
        elif isinstance(event, Reconnecting):
            self.status.retry_at = time.monotonic() + event.delay
            self._link(Link.RECONNECTING, event.reason)
        elif isinstance(event, Disconnected):
            self._link(Link.OFFLINE, event.reason)
            if self.dumb:
                self.error(f"{event.reason}; reconnecting")
        elif isinstance(event, TokenEvent):
            self._token(event)
        if isinstance(event, Acked | Rejected):
            self._refresh()  # the queued count

    def _link(self, link: Link, reason: str | None = None) -> None:
        """Show a connection state on the status line; while waiting to reconnect, count the
        seconds down."""
        self.status.link = link
        if reason is not None or link is Link.CONNECTED:
            self.status.reason = reason or ""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if link is Link.RECONNECTING:
            self._tick()
        self._refresh()

    def _tick(self) -> None:
        self._refresh()
        self._ticker = asyncio.get_running_loop().call_later(1.0, self._tick)

    def _token(self, event: TokenEvent) -> None:
        """Token trouble: one line in the scrollback, and a note on the status line until a
        renewal ends it (a routine renewal says nothing)."""
        notice = self.token_trouble.tell(event)
        if notice is not None:
            self.status.token = notice.status
            if not notice.error:
                self.info(notice.text)
            elif isinstance(event, TokenExpired):
                self.error(f"{notice.text} (offline until then: what you type is sent then)")
            else:
                self.error(notice.text)
        self._refresh()

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
            users, count = sorted(self.present), welcome.total_users
            listed = ", ".join(users)
            if count > len(users):  # a big room: the welcome lists only the first names
                listed += f" and {count - len(users)} more (/who lists all)"
            self.info(
                f"joined {stream.room} as {self.me}; {count} here: {listed} (/help lists commands)"
            )

    def _presence(self, user: str, event: str, ts: Any) -> None:
        if event == "join":
            self.present.add(user)
            self.presence.joined(user, self.renderer.system(f"{user} joined {self.room}", ts=ts))
        else:
            self.present.discard(user)
            self.presence.left(user, self.renderer.system(f"{user} left {self.room}", ts=ts))
        self._refresh()

    def _message(self, message: Message, *, live: bool) -> None:
        self._active(message.user)
        self._day_marker(message.ts)
        line, mention = self.renderer.message(message)
        self.write(line)
        if mention and live:
            self.status.mentions += 1
            self._refresh()
            if self.bell:
                self.output.bell()

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
                    self._pasted_newline = False
                    self.output.prompt_started()
                    prompt = asyncio.create_task(self.session.prompt_async(pre_run=self._pre_run))
                    await asyncio.wait({prompt, net, stop}, return_when=asyncio.FIRST_COMPLETED)
                    self.output.prompt_ended()
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
                if self._ticker is not None:
                    self._ticker.cancel()
                for task in (net, stop):
                    task.cancel()
                await asyncio.gather(net, stop, return_exceptions=True)
                for sig in (signal.SIGTERM, signal.SIGHUP):
                    loop.remove_signal_handler(sig)


def run_interactive(
    settings: ClientSettings,
    room: str,
    *,
    since: int | None = None,
    epoch: str | None = None,
    history: int | None = None,
    connect_timeout: float | None = None,
) -> None:
    async def main() -> None:
        ui = ChatUI(settings, room, since=since, history=history, connect_timeout=connect_timeout)
        ui.stream.client.epoch = epoch if since is not None else None
        await ui.run()

    asyncio.run(main())
