"""The windows of the chat screen (:class:`chatctl.ui.app.ChatUI`), as a mixin: a window
opened per room and its network task following the room's stream, what ends a window (a
moderator's part, a room that cannot be joined) or the session, showing, switching, closing
and listing windows, and the status line of the window shown."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from chatctl.client.settings import ClientSettings
from chatctl.errors import AuthError, ConnectError, Removed, UsageError
from chatctl.protocol import Message
from chatctl.ui.direct import DmNotices
from chatctl.ui.notify import Notifier
from chatctl.ui.output import LineOutput
from chatctl.ui.readmarks import Mark
from chatctl.ui.render import Renderer
from chatctl.ui.roomwindow import follow, open_window
from chatctl.ui.screen import Screen
from chatctl.ui.toolbar import Status
from chatctl.ui.window import Window
from chatctl.ui.windows import WindowList


class WindowManager:
    """The window half of the chat screen; the screen sets these attributes."""

    settings: ClientSettings
    marks: dict[str, Mark]
    history: int | None
    renderer: Renderer
    output: LineOutput
    notifier: Notifier
    dms: DmNotices
    windows: WindowList
    screen: Screen
    dumb: bool
    stop: asyncio.Event
    fatal: BaseException | None
    _bell: bool
    _running: bool

    if TYPE_CHECKING:

        @property
        def current(self) -> Window: ...

        def info(self, text: str) -> None: ...

        def error(self, text: str) -> None: ...

        def _refresh(self) -> None: ...

    def _open(self, room: str, timeout: float | None = None) -> Window:
        window = open_window(
            room,
            settings=self.settings,
            mark=self.marks.get(room),
            history=self.history,
            timeout=timeout,
            renderer=self.renderer,
            output=self.output,
            refresh=self._refresh,
            bell=self._bell,
            dumb=self.dumb,
            alert=self._alert,
        )
        if not self.dumb:  # a deleted message's line is redrawn (TERM=dumb cannot)
            window.redraw = lambda: self.screen.redraw()
        self.windows.add(window)
        if self._running:
            self._start(window)
        return window

    def _alert(self, room: str, message: Message) -> None:
        """A live message for you (:mod:`chatctl.ui.notify`): the notify command."""
        if message.user != self.renderer.me:
            self.notifier.notify(room, message.user, message.text)

    def _start(self, window: Window) -> None:
        window.task = asyncio.get_running_loop().create_task(self._run_window(window))

    async def _run_window(self, window: Window) -> None:
        try:
            await follow(window, self.output, self.renderer, self._refresh, self.dms.take)
        except asyncio.CancelledError:
            raise
        except Removed as exc:  # kicked or banned: the window stays, parted (as irssi)
            window.parted = str(exc)
            window.view.removed(str(exc), banned=exc.banned)
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
        status.notify = self.notifier.failure
        return status
