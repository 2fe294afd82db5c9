"""The room as the screen shows it: the stream's events become lines above the input, and
the state that the status line (:mod:`chatctl.ui.toolbar`) and Tab completion read is kept
up to date (who is here, who spoke lately, the connection, unread mentions, token trouble).

:class:`RoomView` knows nothing of the input side or of how the session switches rooms: the
application (:mod:`chatctl.ui.app`) hands it each event with the stream it came from.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

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
from chatctl.client.stream import RoomStream
from chatctl.protocol import Ack, ErrorFrame, Message, Presence, PresenceBatch, UserList
from chatctl.tokens.renewal import TokenTrouble
from chatctl.ui.notify import alerts
from chatctl.ui.presence import QuietPresence
from chatctl.ui.render import Renderer
from chatctl.ui.toolbar import Link, Status

#: Names remembered for completion (most recently active first).
MAX_KNOWN_USERS = 500
#: Seconds after a reconnect during which the users who were here before the connection
#: dropped come back quietly (a server restart is not everyone leaving and joining).
REJOIN_GRACE = 60.0


class Sink(Protocol):
    """Where a view's lines go (:class:`chatctl.ui.window.Window`)."""

    def write(self, line: str) -> None: ...

    def bell(self) -> None: ...

    def fresh(self, message: Message, *, start: bool) -> None:
        """A message the user has not seen is about to be written (``start``: from the
        history after the room's saved read mark)."""

    def shown_message(self, message: Message) -> None:
        """A message's line was written."""

    def delete_message(self, message_id: int, render: Callable[[Message], str]) -> bool:
        """Show message ``message_id`` as deleted (its tombstone drawn by ``render``)."""


class RoomView:
    def __init__(
        self,
        room: str,
        *,
        me: str,
        renderer: Renderer,
        output: Sink,
        refresh: Callable[[], None],
        bell: bool,
        dumb: bool,
        alert: Callable[[str, Message], None] | None = None,
    ) -> None:
        """``refresh()`` redraws the prompt and status line; ``bell``: ring the terminal bell
        when a live message alerts (:mod:`chatctl.ui.notify`: it mentions the user or a
        highlight word, or it is a direct message); ``alert(room, message)`` is called for
        each; ``dumb``: no status line, so connection changes are printed."""
        self.room = room
        self.me = me
        self.renderer = renderer
        self.output = output
        self.refresh = refresh
        self.bell = bell
        self.dumb = dumb
        self.alert = alert
        self.present: set[str] = set()
        #: the token could not be renewed or was refused; the next renewal says it is over
        self.token_trouble = TokenTrouble()
        self.active: OrderedDict[str, None] = OrderedDict()
        self.status = Status(room)
        self.presence = QuietPresence(self.write)
        self._day: str | None = None
        self._ticker: asyncio.TimerHandle | None = None
        #: the stream resumes from the room's saved read mark: its first history is new
        self.from_mark = False
        #: who was here when the connection dropped (their joins after it are quiet)
        self._back: set[str] = set()
        self._back_until = 0.0
        #: moderation requests sent (client id -> ``kick bob``) not answered yet
        self.requests: dict[str, str] = {}

    def switch(self, room: str) -> None:
        """Show another room: nobody is known to be in it yet, and its status starts afresh."""
        self.room = room
        self.present.clear()
        self.status = Status(room)

    def close(self) -> None:
        """Stop the reconnection countdown (the session is over)."""
        if self._ticker is not None:
            self._ticker.cancel()

    # ------------------------------------------------------------------ lines

    def write(self, line: str) -> None:
        self.output.write(line)

    def info(self, text: str) -> None:
        self.write(self.renderer.system(text))

    def error(self, text: str) -> None:
        self.write(self.renderer.system(text, error=True))

    # ------------------------------------------------------------------ users

    def user_names(self) -> list[str]:
        recent = [u for u in reversed(self.active) if u != self.me]
        rest = sorted(self.present - set(recent) - {self.me})
        return recent + rest

    def _active(self, user: str) -> None:
        self.active.pop(user, None)
        self.active[user] = None
        if len(self.active) > MAX_KNOWN_USERS:
            self.active.popitem(last=False)

    # ------------------------------------------------------------------ events

    def event(self, stream: RoomStream, event: Event) -> None:
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
            what = self.requests.pop(event.client_id or "", None)
            if what is not None:  # a /kick, /delete… refused: forbidden, not_found…
                self.error(f"cannot {what}: {event.reason}")
            else:
                self.error(f"server: {event.reason}")
        elif isinstance(event, Ack):
            self.requests.pop(event.client_id, None)  # the announcement says it
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
            self._back |= self.present
            if self.dumb:
                self.error(f"{event.reason}; reconnecting")
            else:  # the reason and the countdown are on the status line
                self.error(
                    f"lost the connection to {stream.room}: reconnecting "
                    "(what you type is kept and sent then; /reconnect tries now)"
                )
        elif isinstance(event, TokenEvent):
            self._token(event)
        if isinstance(event, Acked | Rejected):
            self.refresh()  # the queued count

    def removed(self, text: str, *, banned: bool = False) -> None:
        """A moderator closed the connection for good (``kicked from ops by alice: spam``),
        or a ban refused it: the line, and the status line says the window is parted."""
        self.present.clear()
        again = "tries again" if banned else "joins again"
        self.error(f"{text} (/join {self.room} {again})")
        self._link(Link.PARTED, text)

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
        self.refresh()

    def _tick(self) -> None:
        self.refresh()
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
        self.refresh()

    def _welcome(self, stream: RoomStream, event: Connected) -> None:
        welcome, resume = event.welcome, event.resume
        self.me = self.renderer.me = welcome.user or self.me
        self.present = set(welcome.users)
        self._back -= self.present
        self._back_until = time.monotonic() + REJOIN_GRACE
        if resume.reconnect:
            self.info(f"reconnected to {stream.room}")
        if resume.missed:
            self.error(missed_notice(resume, stream.room))
        start = self.from_mark and not resume.reconnect
        for m in resume.new_history:
            self._message(m, live=False, fresh=start, start=start)
        if not resume.reconnect:
            users, count = sorted(self.present), welcome.total_users
            listed = ", ".join(users)
            if count > len(users):  # a big room: the welcome lists only the first names
                listed += f" and {count - len(users)} more (/who lists all)"
            self.info(
                f"joined {stream.room} as {self.me}; {count} here: {listed} (/help lists commands)"
            )

    def _presence(self, user: str, event: str, ts: Any) -> None:
        back = user in self._back and time.monotonic() < self._back_until
        self._back.discard(user)
        if event == "join" and back:  # here before the connection dropped: no news
            self.present.add(user)
        elif event == "join":
            self.present.add(user)
            self.presence.joined(user, self.renderer.system(f"{user} joined {self.room}", ts=ts))
        else:
            self.present.discard(user)
            self.presence.left(user, self.renderer.system(f"{user} left {self.room}", ts=ts))
        self.refresh()

    def _message(
        self, message: Message, *, live: bool, fresh: bool | None = None, start: bool = False
    ) -> None:
        """``fresh``: not seen by the user yet (default: ``live``); ``start``: from the
        history after the saved read mark."""
        fresh = live if fresh is None else fresh
        self._active(message.user)
        self.presence.arrived(message.user)  # their join line first, if still held back
        if fresh:
            self.output.fresh(message, start=start)
        self._day_marker(message.ts)
        line, mention = self.renderer.message(message)
        self.write(line)
        self.output.shown_message(message)
        moderation = message.moderation
        if moderation is not None and moderation.action == "delete" and moderation.target_id:
            self.output.delete_message(moderation.target_id, lambda m: self.renderer.message(m)[0])
        if fresh and alerts(self.room, message.user, self.me, mention=mention):
            self.status.mentions += 1
            self.refresh()
            if live and self.bell:
                self.output.bell()
            if live and self.alert is not None:
                self.alert(self.room, message)

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
