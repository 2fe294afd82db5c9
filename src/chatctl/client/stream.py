"""One room as an async iterator of typed events: the client loop ``join`` (scripts and the
terminal UI) and ``send`` consume.

::

    async with RoomStream(settings, "ops", history=20) as stream:
        async for event in stream:
            match event:
                case Connected(): ...         # a welcome: history not seen yet, missed or not
                case Message(): ...           # protocol.Message, parsed once
                case Acked() | Rejected(): ...

The stream owns the four things every client used to write itself:

- **the reconnect loop**: connect, and on a retryable failure (:class:`~.connect.Retryable`:
  refused, reset, HTTP 5xx, no welcome) try again with capped exponential backoff and jitter,
  until ``connect_timeout`` (None: forever), then raise :class:`~chatctl.errors.ConnectError`.
  Final failures (401, 403, 400, an untrusted certificate) are raised at once. Every
  connection after the first resumes with ``?since=LAST&epoch=E`` (:class:`~.room.RoomClient`).
  A connection a moderator closes (kicked, 4003; banned, 4004) ends the stream: the
  iteration raises :class:`~chatctl.errors.Removed` and nothing reconnects.
- **the resend policy** (:class:`~.resend.Resender`), which keeps the outbox's order
  through every failure: messages are sent in the outbox's order with their client ids,
  paced; every unacked one is re-sent first after a reconnect, and from a message refused
  with a retryable code on after its ``retry_after`` (the earliest refused one:
  docs/protocol.md, "Order"). Any other error rejects the message.
- **the token** (:class:`~chatctl.tokens.renewal.TokenKeeper`): every connection reads
  the token source again; while connected the token is renewed before it expires with a
  ``refresh`` frame; a token refused at a reconnect (expired while offline) is waited out
  until the source holds a new one, with ``wait_for_token`` (else the AuthError ends the
  stream).
- **parsing**: each frame is decoded once into :mod:`chatctl.protocol`'s types
  (:func:`~chatctl.protocol.parse_server_frame`); the types in ``skip`` are recognised
  without decoding them and dropped.

State changes and what became of each message are events too
(:mod:`chatctl.client.events`), so a status line or a progress report needs no callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable
from types import TracebackType

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from chatctl.client.attempts import ConnectAttempts
from chatctl.client.backoff import Backoff
from chatctl.client.closing import close_reason, describe_close, removed
from chatctl.client.events import (
    Closed,
    Connected,
    Disconnected,
    Event,
    InvalidFrame,
    State,
)
from chatctl.client.outbox import Outbox, Pending
from chatctl.client.paging import needs_paging, page_back
from chatctl.client.resend import Resender
from chatctl.client.room import RoomClient, as_named
from chatctl.client.settings import ClientSettings
from chatctl.errors import Removed
from chatctl.protocol import (
    Ack,
    Delete,
    ErrorFrame,
    HistoryRequest,
    Message,
    MessageKind,
    Moderate,
    Ping,
    ProtocolError,
    RateLimit,
    Refreshed,
    Welcome,
    Who,
    parse_server_frame,
    peek_type,
    type_name,
)
from chatctl.tokens.renewal import TokenKeeper

#: Unanswered request ids remembered (an answer that never comes must not grow the set).
MAX_REQUESTS = 256


# --------------------------------------------------------------------------- the stream


class RoomStream(ConnectAttempts):
    """One room's connection, kept up, as an async iterator of :data:`Event`.

    Iterate it once, inside ``async with`` (which closes the connection however the loop
    ends). :meth:`send`, :meth:`add`/:meth:`write` and :meth:`request` may be called from
    other tasks meanwhile. ``presence=False`` connects send-only (no join/leave for the room),
    ``receive=False`` write-only (none of the room's traffic is sent to it); ``skip`` names
    frame types to drop unread (``{"message", "presence"}`` for a sender). ``since`` with
    ``epoch`` resumes a position saved by an earlier run (as ``chatctl join --since ID@EPOCH``).
    ``wait_for_token``: when the server refuses the token at a reconnect, wait for the source
    to hold a new one (:class:`TokenExpired`) instead of raising the AuthError (the first
    connection's refusal is always raised: a wrong token should fail fast).
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
        connect_timeout: float | None = None,
        skip: Iterable[str] = (),
        outbox: Outbox | None = None,
        backoff: Backoff | None = None,
        wait_for_token: bool = True,
    ) -> None:
        self.client = RoomClient(
            settings,
            room,
            since=since,
            epoch=epoch,
            history=history,
            presence=presence,
            receive=receive,
        )
        self.tokens = TokenKeeper(settings.token, self._notify)
        self.wait_for_token = wait_for_token
        self.connect_timeout = connect_timeout
        self.skip = frozenset(skip)
        self.outbox = outbox if outbox is not None else Outbox()
        self.sender = Resender(self.outbox, self._spawn)
        self.backoff = backoff or Backoff()
        self.state = State.CONNECTING
        self.welcome: Welcome | None = None
        self._ws: ClientConnection | None = None
        self._iterator: AsyncGenerator[Event] | None = None
        self._closing = asyncio.Event()
        #: set by :meth:`reconnect_now`: the wait before the next attempt ends
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        #: events from other tasks (token renewal), yielded before the next frame
        self._notices: deque[Event] = deque()
        #: the task iterating the stream while it waits for a frame; _notify wakes it
        self._receiving: asyncio.Task[object] | None = None
        #: client ids of the requests sent (:meth:`request`) not answered yet
        self._requests: set[str] = set()
        self._woken = False

    @property
    def room(self) -> str:
        return self.client.room

    @property
    def display_url(self) -> str:
        return self.client.display_url

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def __aenter__(self) -> RoomStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
        if self._iterator is not None:  # left with break/return: close the connection now
            with contextlib.suppress(RuntimeError):  # still running in another task
                await self._iterator.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        self._iterator = iterator = self._events()
        return iterator

    async def close(self) -> None:
        """End the stream: the iteration yields :class:`Closed` and stops."""
        self._closing.set()
        self.sender.close()
        ws = self._ws
        if ws is not None:
            await ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def reconnect_now(self) -> bool:
        """Connect again at once (``/reconnect``): a live connection is closed and made
        again, a wait before the next attempt ends now. False once the stream is closed."""
        if self._closing.is_set():
            return False
        self.backoff.reset()
        ws = self._ws
        if ws is not None:
            self._spawn(ws.close())
        else:
            self._wake.set()
        return True

    # ------------------------------------------------------------------ sending

    def add(self, text: str, kind: MessageKind = "text", origin: int = 0) -> Pending:
        """Put a message in the outbox; it goes out with the next :meth:`write` or, when
        offline, first thing after the next connect."""
        return self.outbox.add(text, kind, origin)

    async def write(self, pending: Iterable[Pending] = ()) -> None:
        """Send what the outbox holds and this connection has not sent yet, paced, in the
        outbox's order (``pending``, added already, is among it). When offline, or while the
        server holds the connection's messages back after a refusal, nothing is sent now:
        they go out after the next connect, or when the hold ends, in order."""
        del pending  # every unsent message of the outbox goes, in order
        await self.sender.write()

    async def send(self, text: str, kind: MessageKind = "text", origin: int = 0) -> Pending:
        """:meth:`add` and :meth:`write` one message."""
        p = self.add(text, kind, origin)
        await self.write((p,))
        return p

    async def request(self, frame: Who | Ping | HistoryRequest | Moderate | Delete) -> bool:
        """Send a request frame; False when offline. An error answering a request with a
        ``client_id`` is yielded as the :class:`~chatctl.protocol.ErrorFrame` it is (never
        taken for a refused token renewal)."""
        ws = self._ws
        if ws is None:
            return False
        client_id = getattr(frame, "client_id", None)
        if client_id is not None:
            self._requests.add(client_id)
            if len(self._requests) > MAX_REQUESTS:
                self._requests.pop()
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame.frame())
        return True

    def _notify(self, event: Event) -> None:
        """Yield ``event`` from the iteration now, even while it waits for a frame: its
        ``recv()`` is cancelled (safe: websockets loses nothing) and called again after.
        Cheaper per frame than a timeout context around every ``recv()``."""
        self._notices.append(event)
        task = self._receiving
        if task is not None and not self._woken:
            self._woken = True
            task.cancel()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ the loop

    async def _events(self) -> AsyncGenerator[Event]:
        while not self._closing.is_set():
            connection = None
            async with contextlib.aclosing(self._connect()) as attempts:
                async for step in attempts:
                    if isinstance(step, tuple):
                        connection = step
                    else:
                        yield step
            if connection is None:
                break  # closed while connecting
            ws, welcome = connection
            early: list[str | bytes] = []  # frames read while paging the resume back
            if needs_paging(welcome, self.client.epoch):
                try:
                    welcome, early = await page_back(ws, welcome)
                except ConnectionClosed as exc:
                    await ws.close()
                    self.state = State.RECONNECTING
                    yield Disconnected(close_reason(exc))
                    continue
            resume = self.client.resume(welcome)
            self.backoff.reset()
            self.welcome = welcome
            self._ws, self.state = ws, State.CONNECTED
            resending = self.sender.connected(ws, welcome)  # unacked ones first, in order
            gone: Removed | None = None
            renewer = asyncio.ensure_future(self.tokens.renew(ws.send))
            try:
                yield Connected(welcome, resume, resending)
                for data in early:
                    if (event := self._on_frame(data)) is not None:
                        yield event
                try:
                    task = asyncio.current_task()
                    while True:
                        while self._notices:
                            yield self._notices.popleft()
                        self._receiving = task
                        try:
                            data = await ws.recv()  # cancelling recv() loses nothing
                        except asyncio.CancelledError:
                            if not self._woken or task is None or task.uncancel() > 0:
                                raise  # a real cancellation
                            continue  # woken by _notify
                        finally:
                            self._receiving, self._woken = None, False
                        event = self._on_frame(data)
                        if event is not None:
                            yield event
                except ConnectionClosedOK:
                    reason = describe_close(ws.close_code, ws.close_reason or "")
                except ConnectionClosed as exc:
                    reason = close_reason(exc)
                    if exc.rcvd is not None:
                        gone = removed(exc.rcvd.code, self.room, exc.rcvd.reason)
            finally:
                renewer.cancel()
                self._ws = None
                self.sender.disconnected()
                await ws.close()
            if gone is not None:  # kicked or banned: never reconnect on our own
                self._closing.set()
                self.sender.close()
                self.state = State.CLOSED
                raise gone
            if self._closing.is_set():
                break
            self.state = State.RECONNECTING
            yield Disconnected(reason)
        self.state = State.CLOSED
        yield Closed()

    def _on_frame(self, data: str | bytes) -> Event | None:
        skip = self.skip
        if skip and peek_type(data) in skip:
            return None
        try:
            frame = parse_server_frame(data)
        except ProtocolError as exc:
            return InvalidFrame(exc.reason)
        if skip and type_name(frame) in skip:
            return None
        frame = as_named(frame, self.client.room)
        if isinstance(frame, Message):
            self.client.seen(frame)
            return frame
        if isinstance(frame, Ack):
            self._requests.discard(frame.client_id)
            return self.sender.on_ack(frame)
        if isinstance(frame, ErrorFrame):
            if frame.client_id is not None and frame.client_id in self._requests:
                self._requests.discard(frame.client_id)
                return frame
            return self.sender.on_error(frame) or self.tokens.on_error(frame) or frame
        if isinstance(frame, RateLimit):
            self.sender.on_limits(frame)
            return None
        if isinstance(frame, Refreshed):
            return self.tokens.on_refreshed(frame)
        if isinstance(frame, Welcome):
            return None  # only the first frame is a welcome
        return frame
