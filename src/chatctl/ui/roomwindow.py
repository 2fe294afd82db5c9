"""Opening a room's window for :mod:`chatctl.ui.app`: the window with its
:class:`~chatctl.ui.view.RoomView` and its :class:`~chatctl.client.stream.RoomStream`
(starting from the room's read mark, if there is one), and the network task's loop that
hands the stream's events to the window."""

from __future__ import annotations

from collections.abc import Callable

from chatctl.client.events import Connected
from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.protocol import DmNotice, HistoryPage, Message
from chatctl.ui.output import LineOutput
from chatctl.ui.readmarks import Mark
from chatctl.ui.render import Renderer
from chatctl.ui.view import RoomView
from chatctl.ui.window import NEW_MESSAGES, Window


def open_window(
    room: str,
    *,
    settings: ClientSettings,
    mark: Mark | None,
    history: int | None,
    timeout: float | None,
    renderer: Renderer,
    output: LineOutput,
    refresh: Callable[[], None],
    bell: bool,
    dumb: bool,
    alert: Callable[[str, Message], None] | None = None,
) -> Window:
    """A window for ``room``, not yet connected (:func:`follow` runs its stream)."""

    def view(window: Window) -> RoomView:
        v = RoomView(
            room,
            me=renderer.me,
            renderer=renderer,
            output=window,
            refresh=refresh,
            bell=bell,
            dumb=dumb,
            alert=alert,
        )
        v.from_mark = mark is not None
        return v

    def stream() -> RoomStream:
        return RoomStream(
            settings,
            room,
            since=None if mark is None else mark.id,
            epoch=None if mark is None else mark.epoch,
            history=history,
            connect_timeout=timeout,
        )

    return Window(
        room,
        screen=output,
        make_view=view,
        make_stream=stream,
        marker=lambda: renderer.marker(NEW_MESSAGES),
    )


async def follow(
    window: Window,
    output: LineOutput,
    renderer: Renderer,
    refresh: Callable[[], None],
    on_dm: Callable[[DmNotice], None],
) -> None:
    """Run ``window``'s stream, its events to its view and older pages to the screen while
    it is shown, until the stream ends; its errors are the caller's. The server's ``dm``
    notices go to ``on_dm`` (every window's connection hears them)."""
    stream = window.stream
    async with stream:
        async for event in stream:
            if isinstance(event, Connected):
                window.opened = True
            if isinstance(event, DmNotice):
                on_dm(event)
                continue
            if isinstance(event, HistoryPage):
                for line in window.older.answer(window, event, renderer):
                    if window.visible:
                        output.write(line)
                continue
            window.view.event(stream, event)
            if isinstance(event, Message) and not window.visible:
                refresh()  # the activity bar
