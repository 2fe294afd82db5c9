"""The resend policy of a :class:`~chatctl.client.stream.RoomStream`, which keeps the
outbox's order through every failure.

Every message goes through the :class:`~chatctl.client.outbox.Outbox` with a client id and
is sent in the outbox's order, paced under the limits the server announced (the welcome's,
then ``limits`` frames). After a reconnect every unacked one is re-sent first, in order,
with the same ids (the server's de-duplication acks a repeat as ``duplicate``). A retryable
error (:data:`~chatctl.protocol.RETRYABLE_CODES`) stops sending for its ``retry_after``,
then re-sends from the earliest refused message on, every unacked one, in order: the server
stores none of them in between (docs/protocol.md, "Order"; errors with ``blocked_by`` are
usually those later ones, already behind the cursor). Through any number of refusals: only
an error answering a message's latest send counts. Any other error rejects the message for
good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chatctl.client.events import Acked, Deferred, Event, Rejected
from chatctl.client.outbox import Outbox, Pending
from chatctl.client.pacer import Pacer
from chatctl.protocol import Ack, ErrorFrame, RateLimit, Welcome


class Resender:
    """The outbox sent in order over the stream's current connection, paced, and sent
    again from a refused message on. ``spawn`` runs a write in the stream's own tasks (a
    refusal's hold ends with one)."""

    def __init__(self, outbox: Outbox, spawn: Callable[[Awaitable[None]], None]) -> None:
        self.outbox = outbox
        self._spawn = spawn
        #: paces sends under the limits the welcome announced (None: unlimited)
        self.pacer: Pacer | None = None
        #: the stream's connection (None: offline)
        self._ws: ClientConnection | None = None
        self._write_lock = asyncio.Lock()
        #: the outbox's messages up to this seq were sent on this connection (the cursor
        #: :meth:`write` sends from; a retryable refusal moves it back)
        self._sent = 0
        #: monotonic time before which nothing is sent (after a retryable refusal)
        self._hold_until = 0.0
        #: counts cursor moves, so a write in progress starts again from the cursor
        self._rewinds = 0
        self._timers: set[asyncio.TimerHandle] = set()

    def connected(self, ws: ClientConnection, welcome: Welcome) -> int:
        """A new connection: every unacked message is sent again, first, in order. Returns
        how many."""
        # this connection's share of the limits (the user may have others on the node)
        self.pacer = Pacer.from_welcome(welcome)
        self._sent, self._hold_until = 0, 0.0
        self._rewinds += 1
        for p in self.outbox.pending.values():
            p.outstanding = 0  # the old connection's answers never come
        self._ws = ws
        resending = len(self.outbox)
        if resending:
            self._spawn(self.write())
        return resending

    def disconnected(self) -> None:
        self._ws = None

    def close(self) -> None:
        """Cancel the timers that end a refusal's hold."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    async def write(self) -> None:
        """Send what the outbox holds and this connection has not sent yet, paced, in the
        outbox's order. When offline, or while the server holds the connection's messages
        back after a refusal, nothing is sent now: they go out after the next connect, or
        when the hold ends, in order."""
        ws = self._ws
        if ws is None:
            return
        async with self._write_lock:
            while self._ws is ws and time.monotonic() >= self._hold_until:
                rewinds = self._rewinds
                batch = [p for p in self.outbox.unacked() if p.seq > self._sent]
                if not batch:
                    return
                try:
                    for p in batch:
                        if p.client_id not in self.outbox.pending:
                            continue  # acked or rejected meanwhile
                        if self.pacer is not None:
                            await self.pacer.wait()
                        if self._rewinds != rewinds or self._ws is not ws:
                            break  # a refusal or a reconnect: start again from the cursor
                        self._sent = p.seq
                        p.outstanding += 1
                        await ws.send(p.frame)
                except ConnectionClosed:
                    return  # re-sent after the reconnect

    def on_ack(self, frame: Ack) -> Event:
        p = self.outbox.on_ack(frame)
        return frame if p is None else Acked(p, frame)

    def on_error(self, frame: ErrorFrame) -> Event | None:
        """What an error frame means for the outbox; None when it answers none of its
        messages."""
        p, delay = self.outbox.on_error(frame)
        if p is None:
            return None
        if p.outstanding:
            p.outstanding -= 1
        if delay is None:
            return Rejected(p, frame)
        if not p.outstanding:  # the answer to its latest send: re-send from it
            self._rewind(p, delay)
        return Deferred(p, frame, delay)

    def on_limits(self, frame: RateLimit) -> None:
        if self.pacer is not None:  # the user's connection count changed our share
            self.pacer.update(frame)

    def _rewind(self, p: Pending, delay: float) -> None:
        """The server refused ``p`` with a retryable code: it stores no later message of
        this connection until ``p`` comes back (docs/protocol.md, "Order"). Send nothing for
        ``delay`` seconds, then ``p`` and every later unacked message again, in order.

        With or without ``blocked_by``: the refusals after the first one of an episode
        are of messages after it, which the cursor has gone back past already; one that is
        not (blocked by a message already stored, or an earlier message refused after a
        later one) moves the cursor back to it, so nothing refused is left behind."""
        if p.seq > self._sent:
            return  # not sent again since the cursor went back past it: it goes in order
        self._sent = p.seq - 1
        self._rewinds += 1
        self._hold_until = max(self._hold_until, time.monotonic() + delay)
        ws = self._ws

        def fire() -> None:
            self._timers.discard(handle)
            if self._ws is ws:
                self._spawn(self.write())

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(handle)
