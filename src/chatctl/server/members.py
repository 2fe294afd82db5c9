"""A room's local members as the hub keeps them (:class:`RoomMembers`): the ready
connections, those waiting for their welcome, the plain-text ones, the other readers, and
the room's presence tick in progress; and the events the hub delivers to them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import Gap, Reset
from chatctl.protocol import Message, Presence, PresenceBatch, PresenceEvent

Event = Message | Presence | PresenceBatch
#: a reader of a room other than a WebSocket connection (see :meth:`chatctl.server.hub.Hub.listen`)
Listener = Callable[[Event | Reset | Gap], None]


@dataclass(eq=False)
class RoomMembers:
    name: str
    ready: set[ServerConnection] = field(default_factory=set)
    #: connections whose welcome is not written yet -> the events they must still get
    waiting: dict[ServerConnection, list[Event]] = field(default_factory=dict)
    #: the newest id delivered live to the room (the hub never delivers an id twice)
    last_id: int = 0
    #: connections whose welcome carried ids the live feed has not delivered yet -> the
    #: welcome's last id; empty but for the moments a feed lags behind the store
    ahead: dict[ServerConnection, int] = field(default_factory=dict)
    #: presence changes of the current tick not sent yet: user -> its net change
    presence: dict[str, PresenceEvent] = field(default_factory=dict)
    #: every user those changes touched -> their last change (for the fresh connections)
    touched: dict[str, PresenceEvent] = field(default_factory=dict)
    presence_ts: float = 0.0
    #: ends the current presence tick; None when no tick is running
    presence_timer: asyncio.TimerHandle | None = None
    #: connections whose user list (welcome or ``who``) is recent -> (user, loop time of it)
    fresh: dict[ServerConnection, tuple[str, float]] = field(default_factory=dict)
    #: the room's readers that are not WebSocket connections (Server-Sent Events streams):
    #: each is called with every event the members get, and with a :class:`Reset` or :class:`Gap`
    listeners: list[Listener] = field(default_factory=list)
    #: ready connections in the plain-text mode (``?format=text``): messages only, as lines
    plain: set[ServerConnection] = field(default_factory=set)
    #: a conversation's internal room: each frame is written to each connection with the
    #: room named as that side names it (:meth:`chatctl.server.hub.Hub.relabel`), not shared
    conversation: bool = False

    def __len__(self) -> int:
        return len(self.ready) + len(self.waiting) + len(self.plain) + len(self.listeners)
