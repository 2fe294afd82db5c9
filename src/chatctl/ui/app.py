"""The interactive ``chatctl join`` on a terminal.

Two tasks share the terminal: the network task hands the events of the room's
:class:`~chatctl.client.stream.RoomStream` to the :class:`~chatctl.ui.view.RoomView`, which
shows them, and follows ``/join`` to the next room's stream; the input task awaits
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

from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal

from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.errors import AuthError, UsageError
from chatctl.protocol import MessageKind, Who
from chatctl.recent import recent_rooms
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.config import JoinConfig, input_history
from chatctl.ui.keys import create_key_bindings
from chatctl.ui.output import LineOutput
from chatctl.ui.render import Renderer, color_mode
from chatctl.ui.style import create_style
from chatctl.ui.toolbar import Status, create_toolbar
from chatctl.ui.view import RoomView


class ChatUI:
    def __init__(
        self,
        settings: ClientSettings,
        room: str,
        *,
        since: int | None = None,
        history: int | None = None,
        connect_timeout: float | None = None,
        ansi: bool = False,
    ) -> None:
        """``connect_timeout``: seconds the first connection may take before the session
        ends with :class:`~chatctl.errors.ConnectError` (None: retry for ever); once
        connected, the client reconnects for as long as it runs. ``ansi`` (or ``ansi`` in
        config.toml's ``[join]``): show the colours messages carry."""
        config = JoinConfig.from_config(settings.config)
        self.settings = settings
        self.history = history if history is not None else config.history
        self.stream = self._stream(room, since, connect_timeout)
        self.dumb = is_dumb_terminal()
        mode = color_mode({"color": config.color})
        me = settings.user_hint or ""
        self.output = LineOutput(
            dumb=self.dumb, prompt_line=lambda: self._prompt() + self.session.default_buffer.text
        )
        #: what the screen shows of the room (its lines, who is here, the status line's state)
        self.view = RoomView(
            room,
            me=me,
            renderer=Renderer(
                me=me,
                color=mode == "color",
                emphasis=mode == "mono",
                colors=config.colors,
                timestamp=config.timestamp,
                width=None if self.dumb else self._columns,
                ansi=ansi or config.ansi,
            ),
            output=self.output,
            refresh=self._refresh,
            bell=config.bell,
            dumb=self.dumb,
        )
        self.completer = ChatCompleter(
            commands.completion_table(),
            self.view.user_names,
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
        self._pasted_newline = False
        self._clear_pending = False
        self.stop = asyncio.Event()

    @property
    def room(self) -> str:
        """The room the screen is in (:attr:`RoomView.room`)."""
        return self.view.room

    @room.setter
    def room(self, room: str) -> None:
        self.view.room = room

    @property
    def bell(self) -> bool:
        """Ring the terminal bell on a mention (``/bell`` sets it)."""
        return self.view.bell

    @bell.setter
    def bell(self, bell: bool) -> None:
        self.view.bell = bell

    def _prompt(self) -> str:
        return f"[{self.room}] "

    def _stream(self, room: str, since: int | None, timeout: float | None) -> RoomStream:
        return RoomStream(
            self.settings, room, since=since, history=self.history, connect_timeout=timeout
        )

    def _status(self) -> Status:
        status = self.view.status
        status.room = self.room
        status.users = len(self.view.present)
        status.queued = len(self.stream.outbox)
        return status

    def _columns(self) -> int:
        return self.session.app.output.get_size().columns

    # ------------------------------------------------------------------ output

    def info(self, text: str) -> None:
        self.view.info(text)

    def error(self, text: str) -> None:
        self.view.error(text)

    def clear(self) -> None:
        """Clear the screen when the next prompt is running: clearing asks the terminal where
        the cursor is, and the answer must be read by prompt-toolkit, not echoed by a tty in
        cooked mode between two prompts (``^[[1;1R``)."""
        self._clear_pending = True

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
        self.view.status.mentions = 0  # you answered: the mentions are read
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
        self.view.switch(room)
        self.stream = self._stream(room, None, None)
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
                        self.view.event(stream, event)
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
                self.view.close()
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
    ansi: bool = False,
) -> None:
    async def main() -> None:
        ui = ChatUI(
            settings,
            room,
            since=since,
            history=history,
            connect_timeout=connect_timeout,
            ansi=ansi,
        )
        ui.stream.client.epoch = epoch if since is not None else None
        await ui.run()

    asyncio.run(main())
