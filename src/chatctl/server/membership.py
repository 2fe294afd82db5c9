"""One connection's membership of one room, from its accepted handshake to its end.

::

    Membership(...)   the handshake is accepted: it takes a slot under the connection limits
    lost()            the TCP connection is gone (wire.on_lost): the slot is released
    attach()          before the 101 goes out: nothing published from now on can miss it
                      (a write-only connection, ?receive=0, stays out of the room's fan-out)
    join(conn_id)     the handler runs: the room hears of the user (unless ?presence=0)
    ready(after_id)   the welcome is written: live events flow, minus what it carried, and
                      changes of the user's share of the rate limits are told (a listener
                      of the limits: share_changed)
    end()             however it ended: out of the hub, presence leave, slot released

Each step is undone by :meth:`end` only if it was taken, and :meth:`end` may run more than
once; :meth:`release` (the slot alone) is synchronous, for the connection-lost callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import Broker
from chatctl.protocol import RateLimit
from chatctl.server.handshake import Admission
from chatctl.server.hub import Hub
from chatctl.server.limits import Limits

log = logging.getLogger("chatctl.server")


class Membership:
    __slots__ = (
        "_attached",
        "_broker",
        "_forget",
        "_hub",
        "_joined",
        "_limits",
        "_slot",
        "adm",
        "conn",
        "conn_id",
        "room",
        "user",
    )

    def __init__(
        self,
        conn: ServerConnection,
        adm: Admission,
        *,
        hub: Hub,
        broker: Broker,
        limits: Limits,
        forget: Callable[[Membership], None],
    ) -> None:
        self.conn = conn
        self.adm = adm
        self.user = adm.claims.user
        self.room = adm.room
        #: this node's id for the connection, set by :meth:`join`
        self.conn_id = ""
        self._hub, self._broker, self._limits = hub, broker, limits
        self._forget = forget
        limits.acquire(self.user, self.room)
        hub.sanctions.enter(self.room, self.user, conn)  # a kick or a ban closes it
        if adm.label != self.room:  # a conversation: "@bob", never its internal room
            hub.relabel(conn, self.room, adm.label)
        self._slot = True
        self._attached = False
        self._joined = False

    async def attach(self) -> None:
        """Subscribe to the room; its events are kept aside until :meth:`ready`.

        Raises :class:`~chatctl.errors.BrokerError` when the broker cannot subscribe."""
        if not self.adm.receive:
            return  # write-only: the room's traffic is never sent to it
        await self._hub.attach(self.room, self.conn)
        self._attached = True

    async def join(self, conn_id: str) -> None:
        """Announce the user to the room (a send-only connection stays silent)."""
        self.conn_id = conn_id
        if self.adm.presence:
            self._joined = True  # a join that fails half-way still gets its leave
            await self._broker.join(self.room, self.user, conn_id)

    def ready(self, after_id: int) -> None:
        """The welcome (history up to ``after_id``, the user in its list, the user's share of
        the rate limits) is written."""
        if self._attached:
            self._hub.ready(self.room, self.conn, after_id, self.user)
        if self._slot:  # else the connection is already gone
            self._limits.listen(self.user, self)

    def share_changed(self, share: RateLimit) -> None:
        """The user's connection count on the node changed this connection's share of the
        per-user rate limit: a ``limits`` frame tells it. (The membership is what the limits
        call rather than a callback of its own: nothing more to hold per connection.)"""
        self._hub.write(self.conn, share.frame().encode())

    def release(self) -> None:
        """The connection no longer counts against the limits, nor hears of them."""
        if self._slot:
            self._slot = False
            self._hub.sanctions.leave(self.room, self.user, self.conn)
            self._hub.labels.pop(self.conn, None)
            self._limits.unlisten(self.user, self)
            self._limits.release(self.user, self.room)

    def lost(self, _: object = None) -> None:
        """The TCP connection is gone: the slot is free at once, and the server is told (if
        the handler never ran, the server ends the membership)."""
        self.release()
        self._forget(self)

    async def end(self) -> None:
        """Undo every step taken: release the slot, leave the hub, announce the leave."""
        self.release()
        if self._attached:
            self._attached = False
            await self._hub.detach(self.room, self.conn)
        if self._joined:
            self._joined = False
            try:
                await self._broker.leave(self.room, self.user, self.conn_id)
            except Exception as exc:  # the broker may be down; presence expires by itself
                log.warning("presence leave failed for conn=%s: %s", self.conn_id, exc)
