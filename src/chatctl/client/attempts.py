"""The connection attempts of a :class:`~chatctl.client.stream.RoomStream`, as a mixin:
connect, and on a retryable failure try again with capped exponential backoff and jitter
until ``connect_timeout``; a token refused at a reconnect is waited out until its source
holds a new one; every wait ends as soon as the stream is closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable
from typing import TYPE_CHECKING, TypeVar

from websockets.asyncio.client import ClientConnection

from chatctl.client.backoff import Backoff
from chatctl.client.connect import Retryable
from chatctl.client.events import (
    Connecting,
    Event,
    Reconnecting,
    State,
    TokenExpired,
    TokenRenewed,
)
from chatctl.client.room import RoomClient
from chatctl.errors import AuthError, ConnectError
from chatctl.protocol import Welcome
from chatctl.tokens.renewal import TokenKeeper

T = TypeVar("T")


class ConnectAttempts:
    """The reconnect half of the room stream; the stream sets these attributes."""

    client: RoomClient
    tokens: TokenKeeper
    wait_for_token: bool
    connect_timeout: float | None
    backoff: Backoff
    state: State
    _closing: asyncio.Event
    _wake: asyncio.Event
    _notices: deque[Event]

    if TYPE_CHECKING:

        @property
        def display_url(self) -> str: ...

    async def _connect(
        self,
    ) -> AsyncGenerator[Event | tuple[ClientConnection, Welcome]]:
        """Attempts until one gets a welcome (yielded last, as a tuple) or the stream closes."""
        timeout = self.connect_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt, refused = 0, False
        while True:
            attempt += 1
            self.state = State.CONNECTING
            token = await self.tokens.for_connect()
            while self._notices:
                yield self._notices.popleft()
            yield Connecting(self.display_url, attempt)
            try:
                connection = await self._unless_closed(self.client.attempt(token.value))
            except Retryable as exc:
                reason = str(exc)
            except AuthError as exc:  # 401 or 403
                if not self.wait_for_token or self.client.connections == 0:
                    raise
                source = self.tokens.source
                self.state = State.RECONNECTING
                yield TokenExpired(str(exc), source.origin, source.renewable)
                if not source.renewable:
                    raise type(exc)(f"{exc} ({source.fixed})") from None
                if await self._unless_closed(self.tokens.wait_for_new(token)) is None:
                    return
                attempt, refused = 0, True
                deadline = None if timeout is None else time.monotonic() + timeout
                continue
            else:
                if connection is not None:
                    if refused:
                        yield TokenRenewed(token.exp, self.tokens.source.origin)
                    yield connection
                return
            delay = self.backoff.next()
            if deadline is not None and time.monotonic() + delay > deadline:
                raise ConnectError(f"cannot connect to {self.display_url}: {reason}")
            self.state = State.RECONNECTING
            self._wake.clear()
            yield Reconnecting(reason, delay)
            waits = {asyncio.ensure_future(e.wait()) for e in (self._closing, self._wake)}
            try:
                await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            if self._closing.is_set():
                return

    async def _unless_closed(self, aw: Awaitable[T]) -> T | None:
        """``await aw``, or None as soon as the stream is closed (``aw`` is then cancelled)."""
        if self._closing.is_set():
            return None
        task = asyncio.ensure_future(aw)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not task.done():
                task.cancel()
        if closing.done() and not task.done():
            return None
        with contextlib.suppress(asyncio.CancelledError):
            return task.result()
        return None
