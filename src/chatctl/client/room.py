"""One room's connection attempts and resume position (:class:`RoomClient`), and what each
welcome means for the client (:class:`Resume`). :mod:`chatctl.client.stream` puts it
together with the backoff, the outbox and the pacer into the one event stream ``join``,
``send`` and the interactive client consume.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import TypeVar, cast

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chatctl.client.closing import close_reason
from chatctl.client.connect import OPEN_TIMEOUT, Retryable, open_connection
from chatctl.client.settings import ClientSettings
from chatctl.protocol import (
    HistoryPage,
    Message,
    Presence,
    PresenceBatch,
    ProtocolError,
    Welcome,
    is_conversation,
    parse_server_frame,
)
from chatctl.recent import remember_room

_F = TypeVar("_F")


@dataclass
class Resume:
    """What a welcome means for this client: the history it has not seen yet, and whether
    messages were missed (``recovered: false``) since the previous connection."""

    new_history: list[Message]
    missed: bool
    epoch_changed: bool
    reconnect: bool
    #: the last id seen before this welcome (in the previous epoch when it changed)
    after_id: int | None = None
    #: after an epoch change: how many of the new epoch's first messages the server no
    #: longer keeps (the welcome starts at id 1 unless its history was trimmed)
    not_kept: int = 0


class RoomClient:
    """One room's connection attempts and resume position, so every reconnect resumes.

    The first connection asks for ``?since=ID`` (with ``since``, and ``&epoch=EPOCH`` with
    ``epoch``: the epoch that id was seen in) or ``?history=N``; later ones for
    ``?since=LAST&epoch=EPOCH``, LAST being the newest id seen. :meth:`resume` turns each
    welcome into the history not yet shown.
    """

    def __init__(
        self,
        settings: ClientSettings,
        room: str,
        *,
        since: int | None = None,
        epoch: str | None = None,
        history: int | None = None,
        presence: bool = True,
        receive: bool = True,
    ) -> None:
        self.settings = settings
        self.presence = presence
        #: False: a write-only connection (``?receive=0``) that gets none of the room's traffic
        self.receive = receive
        self.room = room
        self.last_id: int | None = since
        self.epoch: str | None = epoch if since is not None else None
        self.history = history
        self.connections = 0
        #: add the room to the recent rooms shell completion offers, on the first welcome
        self.remember = True
        self.user: str | None = None

    @property
    def display_url(self) -> str:
        return self.settings.room_url(self.room)

    def url(self) -> str:
        params: dict[str, object] = {}
        if self.last_id is not None:
            params["since"] = self.last_id
            if self.epoch is not None:
                params["epoch"] = self.epoch
        elif self.history is not None:
            params["history"] = self.history
        if not self.presence:
            params["presence"] = 0
        if not self.receive:
            params["receive"] = 0
        return self.settings.room_url(self.room, params)

    async def attempt(self, token: str) -> tuple[ClientConnection, Welcome]:
        """One connection attempt up to its welcome. Raises :class:`Retryable` when trying
        again may help, the final errors (auth, permission, usage, TLS) otherwise."""
        ws = await open_connection(self.settings, self.room, self.url(), token)
        try:
            welcome = await self._read_welcome(ws)
        except BaseException:
            await ws.close()
            raise
        self.connections += 1
        self.user = welcome.user or self.user or ""
        if self.connections == 1 and self.remember:
            remember_room(self.room)  # offered by shell completion from now on
        return ws, welcome

    async def _read_welcome(self, ws: ClientConnection) -> Welcome:
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                data = await ws.recv()
        except TimeoutError:
            raise Retryable("no welcome from the server") from None
        except ConnectionClosed as exc:
            raise Retryable(close_reason(exc)) from None
        try:
            frame = parse_server_frame(data)
        except ProtocolError:
            raise Retryable("the server sent an invalid welcome") from None
        if not isinstance(frame, Welcome):
            raise Retryable("the server did not start with a welcome frame")
        return frame

    def resume(self, welcome: Welcome) -> Resume:
        """Account for a welcome: return the unseen history and update the resume position."""
        reconnect = self.connections > 1
        prev_last, prev_epoch = self.last_id, self.epoch
        history = [as_named(m, self.room) for m in welcome.history]
        epoch_changed = prev_epoch is not None and welcome.epoch != prev_epoch
        missed = welcome.recovered is False
        if prev_last is not None and not epoch_changed:
            history = [m for m in history if m.id > prev_last]
        not_kept = 0
        if epoch_changed:
            not_kept = history[0].id - 1 if history else welcome.last_id
        self.epoch = welcome.epoch
        self.last_id = welcome.last_id
        for m in history:
            self.seen(m)
        return Resume(history, missed, epoch_changed, reconnect, prev_last, not_kept)

    def seen(self, message: Message) -> None:
        """Record a delivered message id, the next resume point."""
        if self.last_id is None or message.id > self.last_id:
            self.last_id = message.id


def as_named(frame: _F, room: str) -> _F:
    """``frame`` with the room as the client named it: alice's client names a direct
    conversation ``@bob`` (docs/protocol.md, "Direct messages"), as the server's frames do,
    but a server before that change sent its internal name (``+dm+alice+bob``) in the
    messages and presence of a conversation. Other frames are returned as they are."""
    if not is_conversation(room):
        return frame
    if isinstance(frame, Message | Presence | PresenceBatch) and frame.room != room:
        return cast(_F, dataclasses.replace(frame, room=room))
    if isinstance(frame, HistoryPage):
        named = [dataclasses.replace(m, room=room) for m in frame.messages]
        return cast(_F, dataclasses.replace(frame, messages=named))
    return frame
