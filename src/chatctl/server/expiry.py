"""A connection lives as long as its token: closed with 4001 at ``exp`` plus the verifier's
leeway, unless a ``refresh`` frame brought a fresh token first (docs/protocol.md).

::

    expiries = ExpiryQueue(leeway=5.0, counters=counters)    # one per server
    expiry = TokenExpiry(member, expiries)   # the token of the member's admission
    expiry.start()                           # after the welcome
    answer = expiry.refresh(verify(token), room)   # a refreshed frame or an error frame
    expiry.cancel()                          # the connection ended

The refresh token is verified by the caller exactly as the handshake's (the server's current
key, so after a SIGHUP key reload old-key tokens are refused); here it must also be for the
same user and still allow the room.

Every connection has a deadline, and nearly all of them are far away: rather than an asyncio
timer per connection (a ``TimerHandle``, its copy of the ``contextvars`` context and a bound
method: ~300 bytes each, for the life of the connection), the server's connections wait in
one :class:`ExpiryQueue`, a binary heap ordered by ``exp`` behind one timer armed for the
earliest. Each connection is still closed at its own ``exp`` plus the leeway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chatctl.errors import PermissionDenied
from chatctl.protocol import CloseCode, ErrorCode, ErrorFrame, Refreshed
from chatctl.server import wire
from chatctl.server.hub import CLOSE_GRACE, peer
from chatctl.server.metrics import Counters
from chatctl.tokens.claims import Claims
from chatctl.tokens.text import format_time

if TYPE_CHECKING:
    from chatctl.server.membership import Membership

log = logging.getLogger("chatctl.server")

#: The close reason sent with 4001.
EXPIRED_REASON = "token expired"
#: Seconds between two refresh frames of one connection that are verified (each costs a
#: signature check; a client renews once per token lifetime).
MIN_REFRESH_INTERVAL = 1.0
#: ``_last_refresh`` of a connection that never refreshed (one float for all of them)
_NEVER = -math.inf


class TokenExpiry:
    """When one connection's token expires; queued in its server's :class:`ExpiryQueue`."""

    # one per connection, for its whole life: no __dict__, and nothing that can be derived
    # (the log label is made from the membership when a line is logged)
    __slots__ = ("_key", "_last_refresh", "_pos", "claims", "exp", "member", "queue")

    def __init__(self, member: Membership, queue: ExpiryQueue) -> None:
        self.member = member
        self.queue = queue
        #: the current token's claims (the handshake's, then each refresh's): what a
        #: revocation is checked against
        self.claims = member.adm.claims
        #: the current token's exp (None: it never expires)
        self.exp = self.claims.exp
        #: the exp it is queued under, and its place in the queue's heap (-1: not queued)
        self._key = 0.0
        self._pos = -1
        self._last_refresh = _NEVER

    @property
    def label(self) -> str:
        """Who the connection is, for log lines."""
        m = self.member
        return f"user={m.user} room={m.room} peer={peer(m.conn)} conn={m.conn_id}"

    def start(self) -> None:
        """Close the connection at the current ``exp`` plus the leeway (not at an earlier
        one any more); at once if its token was revoked since it was checked."""
        revoked = self.queue.revoked
        reason = None if revoked is None else revoked(self.claims)
        if reason is not None:
            self.revoke(reason)
            return
        self.queue.schedule(self)

    def cancel(self) -> None:
        """The connection ended: forget it."""
        self.queue.discard(self)

    def throttled(self) -> float | None:
        """Seconds until another refresh frame may be verified, or None (and the clock
        starts again): at most one per :data:`MIN_REFRESH_INTERVAL`."""
        now = time.monotonic()
        wait = self._last_refresh + MIN_REFRESH_INTERVAL - now
        if wait > 0:
            return wait
        self._last_refresh = now
        return None

    def refresh(self, claims: Claims, room: str | None) -> Refreshed | ErrorFrame:
        """Take a verified token's claims: the connection now ends at their ``exp``.

        Another user's token is ``invalid_token``, one that does not allow ``room`` is
        ``forbidden``; either leaves the current expiry as it was."""
        user = self.member.user
        if claims.user != user:
            return ErrorFrame(
                ErrorCode.INVALID_TOKEN,
                f"token is for {claims.user}, this connection for {user}",
            )
        try:
            if room is not None:  # None: a conversation, checked by the caller
                claims.check_room(room)
                if self.claims.writes(room):  # a refresh never takes a permission away
                    claims.check_write(room)
        except PermissionDenied as exc:
            return ErrorFrame(ErrorCode.FORBIDDEN, f"{exc}: reconnect with it")
        self.claims = claims.slim()
        self.exp = claims.exp
        self.start()
        self.queue.counters.token_refreshes += 1
        log.debug("token refreshed %s until %s", self.label, format_time(self.exp or 0))
        return Refreshed(user, self.exp or 0)

    def expire(self) -> None:
        """The token expired: close the connection with 4001 (the queue calls this)."""
        if wire.close_now(
            self.member.conn, CloseCode.TOKEN_EXPIRED, EXPIRED_REASON, grace=CLOSE_GRACE
        ):
            self.queue.counters.token_expiries += 1
            log.info(
                "closing %s with %d: token expired at %s",
                self.label,
                CloseCode.TOKEN_EXPIRED,
                format_time(self.exp or 0),
            )

    def revoke(self, reason: str) -> None:
        """The token was revoked: close the connection with 4002."""
        self.queue.discard(self)
        if wire.close_now(self.member.conn, CloseCode.TOKEN_REVOKED, reason, grace=CLOSE_GRACE):
            self.queue.counters.token_revocations += 1
            log.info("closing %s with %d: %s", self.label, CloseCode.TOKEN_REVOKED, reason)


class ExpiryQueue:
    """The token expiries of a server's connections, earliest first, behind one timer.

    A binary min-heap of :class:`TokenExpiry` by ``exp`` (the leeway is the same for all);
    each knows its place in it, so a connection that ends or refreshes leaves it in
    O(log n). The timer is armed for the earliest deadline; firing, it expires every
    connection whose ``exp`` plus the leeway has passed and is armed again for the next.
    """

    __slots__ = ("_heap", "_timer", "_timer_at", "counters", "leeway", "revoked")

    def __init__(
        self,
        *,
        leeway: float,
        counters: Counters,
        revoked: Callable[[Claims], str | None] | None = None,
    ) -> None:
        #: why a token is revoked, or None (checked when a connection is queued)
        self.revoked = revoked
        #: seconds past a token's exp before its connection is closed
        self.leeway = leeway
        self.counters = counters
        self._heap: list[TokenExpiry] = []
        self._timer: asyncio.TimerHandle | None = None
        #: the deadline (wall clock) the timer was armed for
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._heap)

    def connections(self) -> list[TokenExpiry]:
        """Every queued connection (each open connection past its welcome)."""
        return list(self._heap)

    def schedule(self, expiry: TokenExpiry) -> None:
        """Queue ``expiry`` under its current ``exp`` (out of the queue if it has none)."""
        if expiry._pos >= 0:
            self._remove(expiry)
        if expiry.exp is not None:
            expiry._key = expiry.exp
            expiry._pos = len(self._heap)
            self._heap.append(expiry)
            self._sift_up(expiry._pos)
            self._arm()

    def discard(self, expiry: TokenExpiry) -> None:
        """Take ``expiry`` out of the queue, if it is in it. (The timer stays: if it was
        armed for this one, it fires for nothing and is armed for the next.)"""
        if expiry._pos >= 0:
            self._remove(expiry)

    def _arm(self) -> None:
        """Make sure the timer fires by the earliest deadline."""
        if not self._heap:
            return
        due = self._heap[0]._key + self.leeway
        if self._timer is not None:
            if self._timer_at <= due:
                return  # it fires first, and is armed again then
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, due - time.time())
        self._timer = loop.call_at(loop.time() + delay, self._fire)
        self._timer_at = due

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        heap, now = self._heap, time.time()
        while heap and heap[0]._key + self.leeway <= now:
            expiry = heap[0]
            self._remove(expiry)
            try:
                expiry.expire()
            except Exception:  # one connection's failure must not stop the others' expiry
                log.exception("expiring the token of conn=%s failed", expiry.member.conn_id)
        self._arm()

    # ------------------------------------------------------------------ the heap

    def _remove(self, expiry: TokenExpiry) -> None:
        heap, i = self._heap, expiry._pos
        expiry._pos = -1
        last = heap.pop()
        if last is not expiry:  # the last one takes its place, and finds its own
            heap[i] = last
            last._pos = i
            self._sift_up(i)
            self._sift_down(last._pos)

    def _sift_up(self, i: int) -> None:
        heap = self._heap
        item = heap[i]
        while i > 0:
            parent = (i - 1) >> 1
            above = heap[parent]
            if above._key <= item._key:
                break
            heap[i] = above
            above._pos = i
            i = parent
        heap[i] = item
        item._pos = i

    def _sift_down(self, i: int) -> None:
        heap, n = self._heap, len(self._heap)
        item = heap[i]
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and heap[child + 1]._key < heap[child]._key:
                child += 1
            below = heap[child]
            if item._key <= below._key:
                break
            heap[i] = below
            below._pos = i
            i = child
        heap[i] = item
        item._pos = i
