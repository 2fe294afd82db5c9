"""Direct messages on the server: who may open a conversation, and how its recipient hears
of it (docs/protocol.md, "Direct messages").

A conversation is a room like any other, kept under an internal name that no client name
reaches (protocol/direct.py): acks, de-duplication, order, resume and history are the room
machinery's. What is its own:

- :func:`check_dms`: the one rule for reading and writing it: exactly its two users (the
  name is derived from the authenticated user), whatever their tokens' room globs say,
  unless the server runs with ``--no-dms`` or the token says ``"dms": false``.
- Each user's *inbox*, another internal room (``+inbox+bob``), holds one entry per message
  bob has not seen live (``dm ID UNREAD``, its ``user`` the sender) and one per read
  (``read ID``, written when bob opens the conversation). Being a room, it is kept,
  trimmed and survives restarts where the broker's rooms do; a new connection of bob's
  reads it to be told of the conversations with unread messages.
- Live notices travel through one room for all users, ``+dms`` (``dm ID UNREAD TO`` and
  ``read ID TO``), which each node follows once: :class:`Inboxes` turns each entry into a
  ``dm`` frame to every connection of its recipient on the node. One room rather than one
  per user keeps a connection's cost what it was (no subscription per user: measured, a
  subscription per user cost 3.4 KiB per idle connection of 2,000 users).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import Broker, Gap, PeeksRooms, Reset
from chatctl.errors import BrokerError, PermissionDenied
from chatctl.protocol import (
    NOTICES_ROOM,
    DmNotice,
    Message,
    conversation_name,
    dm_peer,
    inbox_room,
)
from chatctl.server.hub import Hub
from chatctl.server.members import Event
from chatctl.tokens.claims import Claims, dms_allowed

log = logging.getLogger("chatctl.server")

DMS_OFF = "direct messages are turned off on this server"
#: tasks of a node that read inboxes for new connections at once
TELLERS = 4


def check_dms(claims: Claims, *, enabled: bool) -> None:
    """Raise :class:`PermissionDenied` unless ``claims`` may use direct messages here
    (``claims`` with their raw payload: the handshake's, a refresh's, an HTTP request's)."""
    if not enabled:
        raise PermissionDenied(DMS_OFF)
    if not dms_allowed(claims.raw):
        raise PermissionDenied(f"token for {claims.user} does not allow direct messages")


def unread_counts(entries: Iterable[Message]) -> dict[str, int]:
    """From an inbox's entries, oldest first: sender -> messages not read, for each sender
    with at least one."""
    read: dict[str, int] = {}
    unread: dict[str, list[int]] = {}
    for entry in entries:
        kind, msg_id, _ = _parse(entry)
        if kind == "read":
            read[entry.user] = max(read.get(entry.user, 0), msg_id)
            unread.pop(entry.user, None)
        elif kind == "dm":
            unread.setdefault(entry.user, []).append(msg_id)
    counts = {u: sum(1 for i in ids if i > read.get(u, 0)) for u, ids in unread.items()}
    return {u: n for u, n in counts.items() if n}


def _parse(entry: Message) -> tuple[str, int, int]:
    """An inbox entry's (or a notice's, which names its recipient last) kind, message id
    and unread count (``("", 0, 0)`` if unknown)."""
    parts = entry.text.split(" ")
    try:
        if parts[0] == "dm" and len(parts) in (3, 4):
            return "dm", int(parts[1]), int(parts[2])
        if parts[0] == "read" and len(parts) in (2, 3):
            return "read", int(parts[1]), 0
    except ValueError:
        pass
    return "", 0, 0


class Inboxes:
    """This node's connections that hear of their user's direct messages, by user, and the
    node's one listener of the notices room while there are any."""

    def __init__(self, broker: Broker, hub: Hub, *, history: int) -> None:
        self.broker, self.hub, self.history = broker, hub, history
        self._conns: dict[str, set[ServerConnection]] = {}
        self._listening: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: connections to tell of their unread conversations, first come first told by at
        #: most TELLERS tasks (not a task per connection: a connect storm's would all wait
        #: on the broker at once, ~2 KiB each)
        self._queue: deque[tuple[str, ServerConnection, str | None, int]] = deque()
        self._tellers = 0

    def enter(
        self, user: str, conn: ServerConnection, *, reading: str | None, last_id: int
    ) -> None:
        """``conn`` of ``user`` hears of direct messages from now on, and is told soon (its
        receive loop does not wait for the broker) of the conversations with unread
        messages. ``reading``: the peer of the conversation the connection opened (its
        messages up to ``last_id`` are now read)."""
        self._conns.setdefault(user, set()).add(conn)
        self._queue.append((user, conn, reading, last_id))
        if self._tellers < TELLERS:
            self._tellers += 1
            task = asyncio.ensure_future(self._tell_queued())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _tell_queued(self) -> None:
        try:
            while self._queue:
                user, conn, reading, last_id = self._queue.popleft()
                if conn in self._conns.get(user, ()):  # else it ended meanwhile
                    await self._tell(user, conn, reading, last_id)
        finally:
            self._tellers -= 1

    async def _tell(
        self, user: str, conn: ServerConnection, reading: str | None, last_id: int
    ) -> None:
        inbox = inbox_room(user)
        try:
            await self._listen()
            if isinstance(self.broker, PeeksRooms) and not await self.broker.last_id(inbox):
                return  # never written to: nothing unread, and no room made for it
            kept = await self.broker.history(inbox, since=None, limit=self.history)
            counts = unread_counts(kept.messages)
            if reading is not None and counts.pop(reading, 0):
                await self.broker.publish(inbox, reading, f"read {last_id}")
                await self.broker.publish(NOTICES_ROOM, reading, f"read {last_id} {user}")
        except BrokerError as exc:
            log.warning("inbox of %s unavailable: %s", user, exc)
            return
        for peer, count in sorted(counts.items()):
            notice = DmNotice(peer, conversation_name(peer), count)
            self.hub.write(conn, notice.frame().encode())

    async def _listen(self) -> None:
        """Follow the notices room, once per node while it has connections to tell."""
        if self._listening is None:
            self._listening = asyncio.ensure_future(self.hub.listen(NOTICES_ROOM, self._event))
        try:
            await asyncio.shield(self._listening)
        except BrokerError:
            self._listening = None  # the next connection tries again
            raise

    def leave(self, user: str, conn: ServerConnection) -> None:
        conns = self._conns.get(user)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self._conns[user]
        if not self._conns and self._listening is not None:
            listening, self._listening = self._listening, None
            task = asyncio.ensure_future(self._unlisten(listening))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _unlisten(self, listening: asyncio.Future[None]) -> None:
        """The node's last such connection ended. A listen started since is one more
        listener of the hub (which counts each), so each listen has its unlisten."""
        try:
            await listening
        except BrokerError:
            return
        await self.hub.unlisten(NOTICES_ROOM, self._event)

    def _event(self, event: Event | Reset | Gap) -> None:
        if not isinstance(event, Message):
            return
        kind, _, count = _parse(event)
        conns = self._conns.get(event.text.rpartition(" ")[2]) if kind else None
        if not conns:
            return
        notice = DmNotice(event.user, conversation_name(event.user), count).frame().encode()
        for conn in list(conns):
            self.hub.write(conn, notice)


async def delivered(broker: Broker, message: Message, *, history: int) -> None:
    """A new message of a conversation is stored: unless its recipient is reading the
    conversation now (a connection in it, on any node), their inbox gets an entry and the
    notices room tells each of their connections. A broker failure loses the notice, not
    the message."""
    sender = message.user
    peer = dm_peer(message.room, sender)
    if peer is None or peer == sender:
        return
    inbox = inbox_room(peer)
    try:
        if peer in await broker.users(message.room):
            return
        kept = await broker.history(inbox, since=None, limit=history)
        unread = unread_counts(kept.messages).get(sender, 0) + 1
        await broker.publish(inbox, sender, f"dm {message.id} {unread}")
        await broker.publish(NOTICES_ROOM, sender, f"dm {message.id} {unread} {peer}")
    except BrokerError as exc:
        log.warning("inbox of %s not told of message %d: %s", peer, message.id, exc)
