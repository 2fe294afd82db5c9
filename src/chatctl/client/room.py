"""The client core's parts: one connection attempt, the resume position, backoff, pacing and
the outbox of unacknowledged messages. :mod:`chatctl.client.stream` puts them together into
the one event stream ``join``, ``send`` and the interactive client consume.

Errors are split in two:

- final (raised at once): HTTP 401 -> :class:`AuthError`, 403 -> :class:`PermissionDenied`,
  400/404 or a malformed URL -> :class:`UsageError`, an untrusted TLS certificate ->
  :class:`ConnectError`. Retrying would give the same answer.
- retryable (:class:`Retryable`): refused, reset or timed-out connections, HTTP 5xx, a
  connection dropped before or after the welcome. The stream retries them with capped
  exponential backoff and jitter until its deadline, then raises :class:`ConnectError` with
  the last reason ("cannot connect to ws://…: connection refused").
"""

from __future__ import annotations

import asyncio
import errno
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from chatctl import __version__
from chatctl.client.sanitize import one_line
from chatctl.client.settings import ClientSettings
from chatctl.errors import AuthError, ConnectError, PermissionDenied, UsageError
from chatctl.protocol import (
    MAX_FRAME_BYTES,
    RETRYABLE_CODES,
    Ack,
    CloseCode,
    ErrorFrame,
    Message,
    MessageKind,
    ProtocolError,
    RateLimit,
    SendMessage,
    Welcome,
    parse_server_frame,
)
from chatctl.recent import remember_room

#: Seconds to wait for the TCP+TLS+HTTP handshake, then for the welcome frame.
OPEN_TIMEOUT = 10.0


class Retryable(Exception):
    """A connection attempt failed in a way that may succeed later; ``str()`` says why."""


# --------------------------------------------------------------------------- backoff


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: ``initial * 2**n`` up to ``cap``, each delay
    drawn uniformly from its upper half (so many clients do not reconnect in lockstep)."""

    initial: float = 0.2
    cap: float = 10.0
    attempts: int = 0

    def next(self) -> float:
        base = min(self.cap, self.initial * 2**self.attempts)
        self.attempts += 1
        return random.uniform(base / 2, base)

    def reset(self) -> None:
        self.attempts = 0


# --------------------------------------------------------------------------- one attempt


def describe_os_error(exc: BaseException) -> str:
    """A short human reason for a socket error ("connection refused", "timed out"…)."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    if "Connect call failed" in text or "[Errno 111]" in text:
        return "connection refused"
    strerror = getattr(exc, "strerror", None)
    return (strerror or text or type(exc).__name__).lower()


def _ssl_context(settings: ClientSettings) -> Any:
    import ssl

    ctx = ssl.create_default_context()
    if settings.cafile is not None:
        ctx.load_verify_locations(cafile=str(settings.cafile.expanduser()))
    return ctx


async def open_connection(
    settings: ClientSettings, room: str, url: str, token: str
) -> ClientConnection:
    """One connection attempt with ``Authorization: Bearer TOKEN``."""
    kwargs: dict[str, Any] = {}
    if url.startswith("wss://"):
        kwargs["ssl"] = _ssl_context(settings)
    try:
        return await connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=OPEN_TIMEOUT,
            compression=None,
            max_size=MAX_FRAME_BYTES * 16,
            max_queue=64,
            user_agent_header=f"chatctl/{__version__}",
            **kwargs,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        body = (exc.response.body or b"").decode(errors="replace").strip()
        reason = one_line(body.splitlines()[0] if body else exc.response.reason_phrase)
        if status == 401:
            raise AuthError(f"authentication failed: {reason}") from None
        if status == 403:
            raise PermissionDenied(f"no permission for room {room}: {reason}") from None
        if status in (400, 404):
            raise UsageError(f"{url.split('?')[0]}: {reason} (HTTP {status})") from None
        raise Retryable(f"HTTP {status} {reason}") from None
    except InvalidURI as exc:
        raise UsageError(f"malformed server URL: {exc}") from None
    except OSError as exc:
        import ssl

        if isinstance(exc, ssl.SSLCertVerificationError):
            raise ConnectError(
                f"TLS certificate of {settings.server} not trusted: "
                f"{exc.verify_message or exc}; pass --cafile"
            ) from None
        raise Retryable(describe_os_error(exc)) from None
    except TimeoutError:
        raise Retryable("timed out") from None
    except (InvalidHandshake, ConnectionClosed, EOFError) as exc:
        raise Retryable(str(exc) or type(exc).__name__) from None


#: what the server's close codes mean, said to users
CLOSE_WORDS: dict[int, str] = {
    CloseCode.NORMAL: "the server closed the connection",
    CloseCode.GOING_AWAY: "the server is shutting down",
    CloseCode.POLICY_VIOLATION: "closed by the server for breaking its rules",
    CloseCode.MESSAGE_TOO_BIG: "closed by the server: a frame was too big",
    CloseCode.INTERNAL_ERROR: "the server failed",
    CloseCode.SERVICE_RESTART: "the server is restarting",
    CloseCode.TRY_AGAIN_LATER: "the server is overloaded",
    CloseCode.SLOW_CONSUMER: "closed by the server: this client read too slowly",
    CloseCode.TOKEN_EXPIRED: "the token expired",
}


#: ordinary closes, whose words say it all (the server's reason only repeats them)
_ORDINARY = {
    CloseCode.NORMAL,
    CloseCode.GOING_AWAY,
    CloseCode.SERVICE_RESTART,
    CloseCode.TRY_AGAIN_LATER,
    CloseCode.TOKEN_EXPIRED,
}


def describe_close(code: int | None, reason: str = "") -> str:
    """A close in words: ``the server is restarting (1012)``, ``connection lost``; the
    server's own reason is added to the others (``... (1008: rate limit exceeded)``)."""
    if code is None or code == 1006:
        return "connection lost"
    words = CLOSE_WORDS.get(code, "closed by the server")
    reason = "" if code in _ORDINARY else one_line(reason)
    return f"{words} ({code}{': ' + reason if reason else ''})"


def close_reason(exc: ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection lost"
    return describe_close(rcvd.code, rcvd.reason)


# --------------------------------------------------------------------------- room client


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
        history = welcome.history
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


# --------------------------------------------------------------------------- pacing


class Pacer:
    """Keeps a sender under the frame-rate limit the server announced (the welcome's
    ``limits``, then ``limits`` frames when the user's connection count changes its share),
    with a small margin, so a bulk send is slowed down rather than refused."""

    MARGIN = 0.95

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate * self.MARGIN
        self.burst = max(1.0, burst * self.MARGIN)
        self._tokens = self.burst
        self._stamp = time.monotonic()

    @classmethod
    def from_welcome(cls, welcome: Welcome) -> Pacer | None:
        limits = welcome.limits
        if not isinstance(limits, dict):
            return None
        rate, burst = limits.get("rate"), limits.get("burst")
        if not isinstance(rate, int | float) or not isinstance(burst, int | float) or rate <= 0:
            return None
        return cls(float(rate), float(burst))

    def update(self, limit: RateLimit) -> None:
        """Pace under ``limit`` from now on (tokens saved up beyond its burst are dropped)."""
        if limit.rate > 0:
            self.rate = limit.rate * self.MARGIN
            self.burst = max(1.0, limit.burst * self.MARGIN)
            self._tokens = min(self._tokens, self.burst)

    async def wait(self) -> None:
        """Take one token, sleeping first if there is none."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens < 1.0:
            await asyncio.sleep((1.0 - self._tokens) / self.rate)
            self._tokens, self._stamp = 1.0, time.monotonic()
        self._tokens -= 1.0


# --------------------------------------------------------------------------- acks


@dataclass
class Pending:
    client_id: str
    text: str
    kind: MessageKind = "text"
    #: where the message came from (a stdin line number), for error messages
    origin: int = 0
    frame: str = field(default="", repr=False)
    #: monotonic time before which it must not be re-sent (after broker_unavailable)
    not_before: float = 0.0
    #: its place in the outbox (1, 2, 3…): messages are sent, and re-sent, in this order
    seq: int = 0
    #: times it was sent on this connection and not answered yet: an error answers its
    #: latest send only when none is left (the answer to an earlier send may come late)
    outstanding: int = 0


class Outbox:
    """Messages sent with a client id and not acked yet, in send order.

    Client ids are ``<random prefix>-<sequence>``: unique across runs, so the server's
    de-duplication recognises a re-sent message and never a new one. After a reconnect,
    :meth:`unacked` gives what to send again, with the same ids.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(6)
        self.seq = 0
        self.pending: dict[str, Pending] = {}
        self.acked = 0
        self.duplicates = 0
        self.rejected: list[tuple[Pending, str]] = []

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, text: str, kind: MessageKind = "text", origin: int = 0) -> Pending:
        self.seq += 1
        cid = f"{self.prefix}-{self.seq}"
        p = Pending(cid, text, kind, origin, seq=self.seq)
        p.frame = SendMessage(text, client_id=cid, kind=kind).frame()
        self.pending[cid] = p
        return p

    def unacked(self) -> Iterator[Pending]:
        return iter(list(self.pending.values()))

    def on_ack(self, ack: Ack) -> Pending | None:
        p = self.pending.pop(ack.client_id, None)
        if p is not None:
            self.acked += 1
            self.duplicates += ack.duplicate
        return p

    def on_error(self, error: ErrorFrame) -> tuple[Pending | None, float | None]:
        """Handle an error frame: ``(pending, retry_after)`` when it should be re-sent later,
        ``(pending, None)`` when the server refused it for good (kept in ``rejected``)."""
        p = self.pending.get(error.client_id) if error.client_id is not None else None
        if p is None:
            return None, None
        if error.code in RETRYABLE_CODES:
            delay = 1.0 if error.retry_after is None else error.retry_after
            p.not_before = time.monotonic() + delay
            return p, delay
        del self.pending[p.client_id]
        self.rejected.append((p, one_line(error.reason or error.code)))
        return p, None


__all__ = [
    "Backoff",
    "ClientSettings",
    "Outbox",
    "Pacer",
    "Pending",
    "Resume",
    "Retryable",
    "RoomClient",
    "close_reason",
    "describe_close",
    "open_connection",
]
