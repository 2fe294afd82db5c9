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
import dataclasses
import secrets
import signal

from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.utils import is_dumb_terminal

from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.protocol import Delete, MessageKind, Moderate, Who
from chatctl.ui import commands
from chatctl.ui.config import JoinConfig
from chatctl.ui.direct import DmNotices, sent_line
from chatctl.ui.notify import Highlights, Notifier, notify_argv
from chatctl.ui.output import LineOutput
from chatctl.ui.prompt import confirm_paste, create_session
from chatctl.ui.readmarks import Mark, load_marks, save_marks
from chatctl.ui.render import Renderer, color_mode
from chatctl.ui.screen import Screen
from chatctl.ui.view import RoomView
from chatctl.ui.window import Window
from chatctl.ui.windowing import WindowManager
from chatctl.ui.windows import WindowList


class ChatUI(WindowManager):
    def __init__(
        self,
        settings: ClientSettings,
        *rooms: str,
        since: int | None = None,
        epoch: str | None = None,
        history: int | None = None,
        connect_timeout: float | None = None,
        ansi: bool = False,
        highlight: list[str] | None = None,
        notify_command: str | None = None,
    ) -> None:
        """One window per room, the first shown. ``since``/``epoch`` (one room) or
        ``history`` replace the saved read marks. ``connect_timeout``: seconds the first
        connection of the rooms opened at start may take before the session ends with
        :class:`~chatctl.errors.ConnectError` (None: retry for ever); once connected, the
        client reconnects for as long as it runs. ``ansi`` (or ``ansi`` in config.toml's
        ``[join]``): show the colours messages carry. ``highlight`` words and a
        ``notify_command`` (replacing config.toml's): see :mod:`chatctl.ui.notify`."""
        config = JoinConfig.from_config(settings.config).given(
            highlight=highlight, notify_command=notify_command
        )
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
        self.highlights = Highlights(config.highlight)
        self.renderer.highlights = self.highlights.words
        self.notifier = Notifier(notify_argv(config.notify_command), lambda: self._refresh())
        self.output = LineOutput(
            dumb=self.dumb, prompt_line=lambda: self._prompt() + self.session.default_buffer.text
        )
        self._bell = config.bell
        self._running = False
        self.windows = WindowList()
        self.dms = DmNotices(show=self.info, is_open=lambda r: self.windows.find(r) is not None)
        for room in rooms:
            self._open(room, connect_timeout)
        self.windows.select(self.windows.all[0])
        self.screen = Screen(
            output=self.output, windows=self.windows, renderer=self.renderer, dumb=self.dumb
        )
        self.session = create_session(
            prompt=self._prompt,
            room=lambda: self.room,
            user_names=lambda: self.view.user_names(),
            on_paste=self._on_paste,
            on_window=self._window_key,
            on_page_up=self._page_up,
            status=None if self.dumb else self._status,
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
        window = self.current
        if self._parted(window):
            return
        self.view.status.mentions = 0  # you answered: the mentions are read
        if not window.stream.connected:  # kept in the outbox: shown as pending until sent
            window.write(self.renderer.pending(self.renderer.me, text))
        await window.stream.send(text, kind)
        self._refresh()

    async def send_to(self, room: str, text: str) -> None:
        """``/msg USER TEXT``: sent from the conversation's window, opened if need be."""
        window = self.windows.find(room) or self._open(room)
        await window.stream.send(text)
        if window is not self.current:
            self.info(sent_line(room, text, self.windows.number(window)))

    def _parted(self, window: Window) -> bool:
        """Say so when ``window``'s room was left for good (kicked, banned)."""
        if window.parted is None:
            return False
        self.error(f"not in {window.room} ({window.parted}): /join {window.room} joins again")
        return True

    async def moderate(self, frame: Moderate | Delete, what: str) -> None:
        """Send a moderation request (``/kick``, ``/delete``…) from the window shown; the
        server's announcement, or its error (``cannot kick bob: …``), comes back to it."""
        window = self.current
        if self._parted(window):
            return
        client_id = f"mod-{secrets.token_hex(6)}"
        frame = dataclasses.replace(frame, client_id=client_id)
        window.view.requests[client_id] = what
        if not await window.stream.request(frame):
            del window.view.requests[client_id]
            self.error(f"not connected: cannot {what} now (/reconnect tries now)")

    def own_last(self) -> int | None:
        return self.current.own_last(self.renderer.me)

    async def request_who(self) -> None:
        if not await self.stream.request(Who()):
            self.error("not connected")

    async def switch_room(self, room: str) -> None:
        """``/join ROOM``: show its window, opening one if there is none; a room that cannot
        be joined closes its window again and shows the error where you were."""
        window = self.windows.find(room)
        if window is not None and window.parted is not None:  # kicked: join again
            self._rejoin(window)
            return
        if window is self.current:
            self.info(f"already in {room}")
        self._show(window or self._open(room))

    def _rejoin(self, old: Window) -> None:
        """``/join`` of a window a moderator parted: a new connection in its place, with its
        lines, resuming after the last message it showed."""
        client = old.stream.client
        if client.last_id is not None:
            self.marks[old.room] = Mark(client.last_id, client.epoch)
        fresh = self._open(old.room)
        fresh.lines, fresh.line_messages, fresh.oldest = old.lines, old.line_messages, old.oldest
        self.windows.replace(old, fresh)
        self._show(fresh)

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
        if self._parted(self.current):
            return
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

    async def handle_line(self, line: str) -> bool:
        line = line.rstrip("\r\n")  # a paste's trailing newline: not a second line
        pasted = self._pasted_newline and "\n" in line.strip() and not line.startswith("/")
        if pasted and not await confirm_paste(line):
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
                await self.notifier.close()
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
    highlight: list[str] | None = None,
    notify_command: str | None = None,
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
            highlight=highlight,
            notify_command=notify_command,
        )
        await ui.run()

    asyncio.run(main())
