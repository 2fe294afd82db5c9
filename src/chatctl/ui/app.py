"""The interactive ``chatctl join ROOM [ROOM…]`` on a terminal.

One :class:`~chatctl.ui.window.Window` per room, as in WeeChat and irssi, each with its own
:class:`~chatctl.client.stream.RoomStream` (resuming on its own after a drop) and a network
task handing the stream's events to the window's :class:`~chatctl.ui.view.RoomView`. One
window is shown; the others count what arrives (the activity bar of the status line). The
input task awaits ``PromptSession.prompt_async()``. All run inside
``patch_stdout(raw=True)``, so printed lines (ANSI strings rendered by
:mod:`chatctl.ui.render`) go above the input line, which is then redrawn intact. Under it,
the status line (:mod:`chatctl.ui.toolbar`) shows the room, its users, the connection,
unread mentions and the other windows' activity: connection attempts change it instead of
printing lines. A line sent is erased from the input (``erase_when_done``): the server's copy
is the one shown. Switching windows clears the screen and draws the window's own lines
again, with a "new messages" line above what arrived while it was hidden; the terminal's
title names the room and the unread mentions. prompt-toolkit restores the terminal on every
way out, SIGTERM and SIGHUP included (they end the session like /quit).

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

from chatctl.client.events import Connected
from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.errors import AuthError, ConnectError, UsageError
from chatctl.protocol import HistoryPage, Message, MessageKind, Who
from chatctl.recent import recent_rooms
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.config import JoinConfig, input_history
from chatctl.ui.keys import create_key_bindings
from chatctl.ui.output import LineOutput
from chatctl.ui.readmarks import Mark, load_marks, save_marks
from chatctl.ui.render import Renderer, color_mode
from chatctl.ui.screen import Screen
from chatctl.ui.style import create_style
from chatctl.ui.toolbar import Status, create_toolbar
from chatctl.ui.view import RoomView
from chatctl.ui.window import NEW_MESSAGES, Window
from chatctl.ui.windows import WindowList


class ChatUI:
    def __init__(
        self,
        settings: ClientSettings,
        *rooms: str,
        since: int | None = None,
        epoch: str | None = None,
        history: int | None = None,
        connect_timeout: float | None = None,
        ansi: bool = False,
    ) -> None:
        """One window per room, the first shown. ``since``/``epoch`` (one room) or
        ``history`` replace the saved read marks. ``connect_timeout``: seconds the first
        connection of the rooms opened at start may take before the session ends with
        :class:`~chatctl.errors.ConnectError` (None: retry for ever); once connected, the
        client reconnects for as long as it runs. ``ansi`` (or ``ansi`` in config.toml's
        ``[join]``): show the colours messages carry."""
        config = JoinConfig.from_config(settings.config)
        self.settings = settings
        self.config = config
        self.history = history if history is not None else config.history
        self.marks: dict[str, Mark] = {}
        if since is not None:
            self.marks = {rooms[0]: Mark(since, epoch)}
        elif history is None:
            self.marks = load_marks()
        self._marks_given = since is not None
        self.dumb = is_dumb_terminal()
        mode = color_mode({"color": config.color})
        self.renderer = Renderer(
            me=settings.user_hint or "",
            color=mode == "color",
            emphasis=mode == "mono",
            colors=config.colors,
            timestamp=config.timestamp,
            width=None if self.dumb else self._columns,
            ansi=ansi or config.ansi,
        )
        self.output = LineOutput(
            dumb=self.dumb, prompt_line=lambda: self._prompt() + self.session.default_buffer.text
        )
        self._bell = config.bell
        self._running = False
        self.windows = WindowList()
        for room in rooms:
            self._open(room, connect_timeout)
        self.windows.select(self.windows.all[0])
        self.screen = Screen(
            output=self.output, windows=self.windows, renderer=self.renderer, dumb=self.dumb
        )
        self.completer = ChatCompleter(
            commands.completion_table(),
            lambda: self.view.user_names(),
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
            key_bindings=create_key_bindings(
                on_paste=self._on_paste, on_window=self._window_key, on_page_up=self._page_up
            ),
            history=input_history(),
            enable_suspend=True,
            erase_when_done=True,
            bottom_toolbar=None if self.dumb else create_toolbar(self._status),
            style=create_style(),
        )
        self.session.default_buffer.on_text_changed += self._typing
        self._pasted_newline = False
        self.screen.app = self.session.app
        self.stop = asyncio.Event()
        #: the error that ends the session (a room refused at start, a token expired)
        self.fatal: BaseException | None = None

    @property
    def current(self) -> Window:
        """The window shown."""
        return self.windows.shown()

    @property
    def view(self) -> RoomView:
        """The shown window's view."""
        return self.current.view

    @property
    def stream(self) -> RoomStream:
        """The shown window's stream."""
        return self.current.stream

    @property
    def room(self) -> str:
        """The room the screen shows."""
        return self.current.room

    @property
    def bell(self) -> bool:
        """Ring the terminal bell on a mention (``/bell`` sets it), in every window."""
        return self._bell

    @bell.setter
    def bell(self, bell: bool) -> None:
        self._bell = bell
        for w in self.windows.all:
            w.view.bell = bell

    def _prompt(self) -> str:
        return f"[{self.room}] "

    # ------------------------------------------------------------------ windows

    def _open(self, room: str, timeout: float | None = None) -> Window:
        mark = self.marks.get(room)

        def view(window: Window) -> RoomView:
            v = RoomView(
                room,
                me=self.renderer.me,
                renderer=self.renderer,
                output=window,
                refresh=self._refresh,
                bell=self._bell,
                dumb=self.dumb,
            )
            v.from_mark = mark is not None
            return v

        def stream() -> RoomStream:
            return RoomStream(
                self.settings,
                room,
                since=None if mark is None else mark.id,
                epoch=None if mark is None else mark.epoch,
                history=self.history,
                connect_timeout=timeout,
            )

        window = Window(
            room,
            screen=self.output,
            make_view=view,
            make_stream=stream,
            marker=lambda: self.renderer.marker(NEW_MESSAGES),
        )
        self.windows.add(window)
        if self._running:
            self._start(window)
        return window

    def _start(self, window: Window) -> None:
        window.task = asyncio.get_running_loop().create_task(self._run_window(window))

    async def _run_window(self, window: Window) -> None:
        stream = window.stream
        try:
            async with stream:
                async for event in stream:
                    if isinstance(event, Connected):
                        window.opened = True
                    if isinstance(event, HistoryPage):
                        for line in window.older.answer(window, event, self.renderer):
                            if window.visible:
                                self.output.write(line)
                        continue
                    window.view.event(stream, event)
                    if isinstance(event, Message) and not window.visible:
                        self._refresh()  # the activity bar
        except asyncio.CancelledError:
            raise
        except (AuthError, UsageError, ConnectError) as exc:
            if window.opened or len(self.windows) == 1 or window not in self.windows.all:
                self._end(exc)
            else:  # a room that cannot be joined: back where you were, the error shown
                self._close(window)
                self.error(f"cannot join {window.room}: {exc}")
        except BaseException as exc:  # ends the session: run() raises it
            self._end(exc)

    def _end(self, exc: BaseException) -> None:
        if self.fatal is None:
            self.fatal = exc
        self.stop.set()

    def _close(self, window: Window) -> None:
        """Take ``window`` out of the list; if it was shown, show the previous one."""
        back = self.windows.remove(window)
        if back is not None:
            self._show(back)

    def _show(self, window: Window) -> None:
        if self.windows.select(window):
            self.screen.redraw()
            self._refresh()

    def _window_key(self, which: int | str) -> None:
        if isinstance(which, int):
            self.show_window(which)
        else:
            self._show(self.windows.step(1 if which == "next" else -1))

    def show_window(self, number: int) -> None:
        if not 1 <= number <= len(self.windows):
            self.error(f"no window {number}: there are {len(self.windows)} (/window lists them)")
            return
        self._show(self.windows.all[number - 1])

    def list_windows(self) -> None:
        for line in self.windows.listing():
            self.info(line)

    def _status(self) -> Status:
        window = self.current
        status = window.view.status
        status.room = window.room
        status.users = len(window.view.present)
        status.queued = len(window.stream.outbox)
        status.window = self.windows.number(window) if len(self.windows) > 1 else 0
        status.activity = self.windows.activity()
        return status

    def _columns(self) -> int:
        return self.session.app.output.get_size().columns

    # ------------------------------------------------------------------ output

    def info(self, text: str) -> None:
        self.view.info(text)

    def error(self, text: str) -> None:
        self.view.error(text)

    def clear(self) -> None:
        self.screen.clear()

    def _refresh(self) -> None:
        self.screen.refresh()

    # ------------------------------------------------------------------ input side

    def _on_paste(self, text: str) -> None:
        self._pasted_newline = self._pasted_newline or "\n" in text

    def _typing(self, _buffer: object) -> None:
        """You are at the keyboard: the shown window's mentions are read."""
        if self.view.status.mentions:
            self.view.status.mentions = 0
            self._refresh()

    async def send_text(self, text: str, kind: MessageKind = "text") -> None:
        text = text.rstrip("\r\n")  # a pasted or copied line's newline is not part of it
        if not text.strip():
            return
        self.view.status.mentions = 0  # you answered: the mentions are read
        window = self.current
        if not window.stream.connected:  # kept in the outbox: shown as pending until sent
            window.write(self.renderer.pending(self.renderer.me, text))
        await window.stream.send(text, kind)
        self._refresh()

    async def request_who(self) -> None:
        if not await self.stream.request(Who()):
            self.error("not connected")

    async def switch_room(self, room: str) -> None:
        """``/join ROOM``: show its window, opening one if there is none; a room that cannot
        be joined closes its window again and shows the error where you were."""
        window = self.windows.find(room)
        if window is self.current:
            self.info(f"already in {room}")
        self._show(window or self._open(room))

    async def part(self) -> bool:
        window = self.current
        save_marks({window.room: window.seen} if window.seen and not self._marks_given else {})
        if len(self.windows) == 1:
            return False
        if window.stream.outbox:
            self.error(f"{len(window.stream.outbox)} unsent messages to {window.room} dropped")
        self._close(window)
        self.info(f"left {window.room}")
        await window.stream.close()
        return True

    async def reconnect(self) -> None:
        if self.stream.reconnect_now():
            self.info(f"reconnecting to {self.room} now")

    async def load_older(self, count: int | None = None) -> None:
        """Ask the server for older messages of the room shown (PageUp, ``/history N``)."""
        window = self.current
        if window.older.exhausted:
            self.info(f"no older messages of {window.room} kept by the server")
            return
        request = window.older.request(window, count)
        if request is not None and not await window.stream.request(request):
            window.older.pending = False
            self.error("not connected: older messages can be loaded once the connection is back")

    def _page_up(self) -> None:
        asyncio.get_running_loop().create_task(self.load_older())

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
        line = line.rstrip("\r\n")  # a paste's trailing newline: not a second line
        pasted = self._pasted_newline and "\n" in line.strip() and not line.startswith("/")
        if pasted and not await self.confirm_paste(line):
            self.info("not sent (edit it with Up)")
            return True
        return await commands.dispatch(self, line)

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        self.screen.save_title()
        with patch_stdout(raw=True):
            self._running = True
            for window in self.windows.all:
                self._start(window)
            stop = asyncio.create_task(self.stop.wait())
            try:
                while True:
                    self._pasted_newline = False
                    self.output.prompt_started()
                    prompt = asyncio.create_task(
                        self.session.prompt_async(pre_run=self.screen.pre_run)
                    )
                    await asyncio.wait({prompt, stop}, return_when=asyncio.FIRST_COMPLETED)
                    self.output.prompt_ended()
                    if not prompt.done():
                        prompt.cancel()
                        with contextlib.suppress(asyncio.CancelledError, EOFError):
                            await prompt
                        if self.fatal is not None:
                            raise self.fatal  # a final error (e.g. token expired)
                        return
                    try:
                        line = prompt.result()
                    except (EOFError, KeyboardInterrupt):
                        return
                    if not await self.handle_line(line):
                        return
            finally:
                if not self._marks_given:
                    save_marks(self.windows.marks())
                tasks = [w.task for w in self.windows.all if w.task is not None]
                for window in self.windows.all:
                    window.view.close()
                for task in (*tasks, stop):
                    task.cancel()
                await asyncio.gather(*tasks, stop, return_exceptions=True)
                for sig in (signal.SIGTERM, signal.SIGHUP):
                    loop.remove_signal_handler(sig)
                self.screen.restore_title()


def run_interactive(
    settings: ClientSettings,
    rooms: list[str],
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
            *rooms,
            since=since,
            epoch=epoch if since is not None else None,
            history=history,
            connect_timeout=connect_timeout,
            ansi=ansi,
        )
        await ui.run()

    asyncio.run(main())
