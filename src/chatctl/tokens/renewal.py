"""The token of a :class:`~chatctl.client.stream.RoomStream`: which one each connection opens
with, renewing it before it expires, and waiting for a new one once the server refused it.

- **Every connection reads the source again** (:meth:`TokenKeeper.for_connect`; the first
  one uses the token read at start-up). A source that fails then (a file being rewritten, a
  command that failed) leaves the last token in use and says so (:class:`TokenProblem`).
- **Renewal while connected** (:meth:`TokenKeeper.renew`, one task per connection): at the
  token's :meth:`~chatctl.tokens.source.Token.renew_at` time (a fifth of its lifetime
  before ``exp``, 1 to 60 s), read the source; a token with a later ``exp`` goes to the
  server in a ``refresh`` frame, answered by ``refreshed`` (:class:`TokenRenewed`) or an
  ``invalid_token``/``forbidden`` error (:class:`TokenProblem`). Until the source holds a
  newer token it is read again every few seconds; a fixed source (``CHATCTL_TOKEN``) is
  reported once as not renewable. The server closes the connection with 4001 at ``exp``
  plus its leeway if nothing worked.
- **After a refusal at reconnect** (HTTP 401/403, e.g. the token expired while offline):
  :meth:`TokenKeeper.wait_for_new` reads the source every 1-5 s until it holds another token
  that has not expired; the stream then reconnects.

The keeper tells of all this with the token events (:data:`TokenEvent`, part of the stream's
events in :mod:`chatctl.client.events`); :class:`TokenTrouble` is what ``chatctl join``, in a
script or on a terminal, says about them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatctl.protocol import ErrorCode, ErrorFrame, Refresh, Refreshed
from chatctl.tokens.source import Token, TokenSource, TokenUnavailable

#: Seconds to wait for the answer to a ``refresh`` frame before reading the source again.
REFRESH_TIMEOUT = 10.0
#: Bounds of the pause between two reads of a source that has no new token yet.
MIN_RETRY, MAX_RETRY = 1.0, 5.0


def clock(when: float | None) -> str:
    """``14:02:07`` in local time."""
    return "?" if when is None else time.strftime("%H:%M:%S", time.localtime(when))


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class TokenRenewed:
    """The server took a fresh token from the source (a ``refreshed`` answer, or a
    connection opened with it after the old one was refused): it lives until ``exp``."""

    exp: float | None
    origin: str


@dataclass(frozen=True)
class TokenProblem:
    """The token could not be renewed yet: ``reason`` says why (the source failed, still
    holds the same token, or is a fixed value). The connection goes on until ``exp``; a
    renewable source is read again later."""

    reason: str
    exp: float | None


@dataclass(frozen=True)
class TokenExpired:
    """The server refused the token at a reconnect (``reason``: expired, or signed with a key
    the server no longer has). ``renewable``: the stream reads ``origin`` again until it holds
    another token, then reconnects (offline meanwhile); otherwise the stream raises
    :class:`~chatctl.errors.AuthError` next."""

    reason: str
    origin: str
    renewable: bool


TokenEvent = TokenRenewed | TokenProblem | TokenExpired


# --------------------------------------------------------------------------- the keeper


class TokenKeeper:
    """The token of one stream's connections; ``notify`` puts an event in the stream."""

    def __init__(self, source: TokenSource, notify: Callable[[TokenEvent], None]) -> None:
        self.source = source
        self.notify = notify
        #: the token the current (or last) connection authenticated with
        self.current: Token | None = None
        self._fresh: Token | None = None  # found by wait_for_new, for the next connection
        self._pending: Token | None = None  # sent in a refresh frame, not answered yet
        self._answered = asyncio.Event()
        self._refused: set[str] = set()
        self._connects = 0

    # ------------------------------------------------------------------ connecting

    async def for_connect(self) -> Token:
        """The token to open the next connection with: the source read again (for the first
        one, the token read at start-up unless it has expired meanwhile, e.g. a ``/join``
        hours later)."""
        self._connects += 1
        last = self.source.current
        if self._fresh is not None:
            token, self._fresh = self._fresh, None
        elif self._connects == 1 and last is not None and not last.expired():
            token = last
        else:
            try:
                token = await asyncio.to_thread(self.source.refresh)
            except TokenUnavailable as exc:
                token = self.source.get()
                self.notify(TokenProblem(f"cannot read a new token: {exc}", token.exp))
        self.current = token
        return token

    async def wait_for_new(self, refused: Token) -> Token:
        """Read the source until it holds a token other than ``refused`` that has not
        expired (every 1 s, then up to every 5 s); the next :meth:`for_connect` uses it."""
        self._refused.add(refused.value)
        delay = MIN_RETRY
        while True:
            await asyncio.sleep(delay)
            delay = min(MAX_RETRY, delay * 1.5)
            try:
                token = await asyncio.to_thread(self.source.refresh)
            except TokenUnavailable:
                continue
            if token.value not in self._refused and not token.expired():
                self._fresh = token
                return token

    # ------------------------------------------------------------------ while connected

    async def renew(self, send: Callable[[str], Awaitable[None]]) -> None:
        """Keep the live connection's token fresh (see the module docstring); ``send``
        writes a frame on that connection. Runs until cancelled, or until nothing more can
        be done (no ``exp``, a fixed source)."""
        source = self.source
        waiting_since: str | None = None
        while True:
            token = self.current
            at = None if token is None else token.renew_at()
            if token is None or at is None:
                return
            await asyncio.sleep(max(0.0, at - time.time()))
            if token is not self.current:
                continue  # renewed meanwhile
            if not source.renewable:
                self.notify(
                    TokenProblem(
                        f"the token expires at {clock(token.exp)} and cannot be renewed: "
                        f"{source.fixed}",
                        token.exp,
                    )
                )
                return
            try:
                new = await asyncio.to_thread(source.refresh)
            except TokenUnavailable as exc:
                self.notify(TokenProblem(f"cannot renew the token: {exc}", token.exp))
                await asyncio.sleep(_retry_delay(token))
                continue
            if new.value in self._refused or not _later(new, token):
                if waiting_since != token.value:
                    waiting_since = token.value
                    self.notify(
                        TokenProblem(
                            f"the token expires at {clock(token.exp)}: waiting for a new "
                            f"one from {source.origin}",
                            token.exp,
                        )
                    )
                await asyncio.sleep(_retry_delay(token))
                continue
            self._pending = new
            self._answered.clear()
            await send(Refresh(new.value).frame())
            try:
                async with asyncio.timeout(REFRESH_TIMEOUT):
                    await self._answered.wait()
            except TimeoutError:
                self._pending = None
            if self.current is not new:  # refused, or no answer: try again a bit later
                await asyncio.sleep(_retry_delay(token))

    def on_refreshed(self, frame: Refreshed) -> TokenRenewed:
        """The server accepted the token of the last refresh frame."""
        if self._pending is not None:
            self.current, self._pending = self._pending, None
        self._answered.set()
        return TokenRenewed(frame.exp, self.source.origin)

    def on_error(self, frame: ErrorFrame) -> TokenProblem | None:
        """The answer to a refresh frame, when ``frame`` is one (else None)."""
        if frame.code not in (ErrorCode.INVALID_TOKEN, ErrorCode.FORBIDDEN):
            return None
        pending, self._pending = self._pending, None
        if pending is not None:
            self._refused.add(pending.value)
        self._answered.set()
        exp = self.current.exp if self.current is not None else None
        return TokenProblem(f"the server refused the new token: {frame.reason}", exp)


def _later(new: Token, old: Token) -> bool:
    """True when ``new`` lives longer than ``old`` (a token without exp counts as longer)."""
    return new.exp is None or old.exp is None or new.exp > old.exp


def _retry_delay(token: Token) -> float:
    """How long to wait before reading the source again: a quarter of the time left, 1-5 s."""
    left = (token.exp or 0.0) - time.time()
    return max(MIN_RETRY, min(MAX_RETRY, left / 4))


# --------------------------------------------------------------------------- telling of it


@dataclass(frozen=True)
class TokenNotice:
    """What to tell of a token event: ``text``, an error line while the token is in trouble
    (``error``) or an information line when the trouble ended; ``status``, the note a status
    line shows meanwhile ("" when the trouble ended)."""

    text: str
    error: bool
    status: str


class TokenTrouble:
    """Whether a stream's token is in trouble (not renewed, or refused), and what to tell of
    each token event: trouble every time, its end once, a routine renewal not at all."""

    def __init__(self) -> None:
        self.active = False

    def tell(self, event: TokenEvent) -> TokenNotice | None:
        """The notice for ``event``, or None when there is nothing to tell (a routine renewal;
        a token refused for good, which ends the stream with an AuthError of its own)."""
        if isinstance(event, TokenRenewed):
            if not self.active:
                return None
            self.active = False
            return TokenNotice(
                f"token renewed from {event.origin}, valid until {clock(event.exp)}", False, ""
            )
        self.active = True
        if isinstance(event, TokenExpired):
            if not event.renewable:
                return None
            return TokenNotice(
                f"{event.reason}; waiting for a new token from {event.origin}",
                True,
                f"token expired: waiting for {event.origin}",
            )
        return TokenNotice(event.reason, True, f"token not renewed, valid until {clock(event.exp)}")
