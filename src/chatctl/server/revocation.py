"""Revoked tokens, as one server sees them: :class:`Revoker`.

Three sources, one check (:meth:`Revoker.reason`, for the handshake, ``refresh`` frames and
the HTTP API): the ids of ``--revoked-tokens FILE`` (read at start and on SIGHUP); the
broker's store when it is a :class:`~chatctl.broker.base.Revocations` (SQLite, Redis),
read at start and polled every :data:`POLL_INTERVAL` seconds, so that a revocation made on
another node or by ``chatctl token revoke`` reaches this one within a second, and survives
restarts; and, with a broker without a store (memory), what this server was told itself
(``POST /api/revoke``). Each time a revocation arrives, the open connections whose token it
covers are closed with 4002 (:meth:`~chatctl.server.expiry.TokenExpiry.revoke`), and the
HTTP API's event streams of that token end (:meth:`Revoker.watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from chatctl.broker.base import Broker, Revocations
from chatctl.errors import BrokerError, ConfigError
from chatctl.server.expiry import ExpiryQueue
from chatctl.tokens.claims import Claims
from chatctl.tokens.revocation import Revocation, RevocationList

log = logging.getLogger("chatctl.server")

#: seconds between two reads of the broker's revocations
POLL_INTERVAL = 0.5
#: the reason a token of --revoked-tokens is refused with
REVOKED = "token revoked"


def read_revoked_file(path: Path | None) -> frozenset[str]:
    """The ids of ``--revoked-tokens`` (``#`` starts a comment); raises ConfigError."""
    if path is None:
        return frozenset()
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"--revoked-tokens {path}: {exc}") from None
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(line for line in lines if line)


class Revoker:
    """What one server knows to be revoked (see the module docstring)."""

    def __init__(self, broker: Broker, expiries: ExpiryQueue, file: Path | None) -> None:
        self.expiries = expiries
        self.file = file
        #: token ids of --revoked-tokens
        self.listed: frozenset[str] = read_revoked_file(file)
        #: the broker's store, if it has one
        self.store: Revocations | None = broker if isinstance(broker, Revocations) else None
        #: the broker store's entries, as last read
        self.entries = RevocationList()
        #: what this server was told itself (POST /api/revoke): the only ones without a
        #: store, and with one they hold until a read of the store has them too
        self.local = RevocationList()
        self._version = ""
        #: the open event streams of the HTTP API: their token, and what closes them
        self._streams: dict[int, tuple[Claims, Callable[[], None]]] = {}
        self._stream_ids = itertools.count()
        self._poller: asyncio.Task[None] | None = None
        self._failing = False
        expiries.revoked = self.reason

    def reason(self, claims: Claims) -> str | None:
        """Why the token of ``claims`` is refused, or None when it is not revoked."""
        if self.listed and claims.jti in self.listed:
            return REVOKED
        reason = self.entries.reason(claims) if len(self.entries) else None
        if reason is None and len(self.local):
            reason = self.local.reason(claims)
        return reason

    def watch(self, claims: Claims, close: Callable[[], None]) -> int:
        """Call ``close`` when the token of ``claims`` is revoked (an HTTP event stream);
        returns what :meth:`unwatch` takes."""
        key = next(self._stream_ids)
        self._streams[key] = (claims, close)
        return key

    def unwatch(self, key: int) -> None:
        self._streams.pop(key, None)

    def reload_file(self) -> None:
        """Read ``--revoked-tokens`` again (SIGHUP); raises ConfigError, keeping the list."""
        listed = read_revoked_file(self.file)
        if listed != self.listed:
            log.info("SIGHUP: %d revoked tokens", len(listed))
        self.listed = listed
        self._close_covered()

    async def start(self) -> None:
        """Read the broker's revocations, then poll them."""
        if self.store is None:
            return
        await self._poll_once()
        self._poller = asyncio.create_task(self._poll(), name="chatctl-revocations")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    async def revoke(self, entry: Revocation) -> None:
        """Revoke (``POST /api/revoke``): into the broker's store, then here at once.
        Raises BrokerError when the store did not take it."""
        if self.store is not None:
            await self.store.revoke(entry)
        self.local.prune(time.time())
        self.local.add(entry)
        log.info("revoked %s", entry.describe())
        self._close_covered()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            await self._poll_once()

    async def _poll_once(self) -> None:
        assert self.store is not None
        try:
            version, entries = await self.store.revocations(self._version)
        except BrokerError as exc:
            if not self._failing:  # the broker itself logs its outage once, as a warning
                log.info("revoked tokens not read (the last ones read still apply): %s", exc)
            self._failing = True
            return
        except Exception:
            log.exception("reading the revoked tokens failed")
            return
        if self._failing:
            log.info("revoked tokens read again")
            self._failing = False
        self._version = version
        if entries is not None:
            self._replace(entries)

    def _replace(self, entries: Iterable[Revocation]) -> None:
        fresh = RevocationList(entries)
        fresh.prune(time.time())
        if len(fresh) != len(self.entries):
            log.info("%d revocations in the broker", len(fresh))
        self.entries = fresh
        self._close_covered()

    def _close_covered(self) -> None:
        """Close every open connection whose token is revoked now."""
        for expiry in self.expiries.connections():
            reason = self.reason(expiry.claims)
            if reason is not None:
                expiry.revoke(reason)
        for key, (claims, close) in list(self._streams.items()):
            reason = self.reason(claims)
            if reason is not None:
                del self._streams[key]
                log.info("closing an event stream of user=%s: %s", claims.user, reason)
                close()
