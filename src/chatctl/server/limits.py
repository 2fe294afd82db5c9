"""Limits that protect one node from one client: token buckets for frame rates and the
connection/room bookkeeping checked before the upgrade.

Nothing here does I/O or knows about websockets; the server asks and acts on the answer.

Frame rate (per connection and per user on this node)
    Every frame a client sends takes a token from its connection's bucket and from its
    user's bucket. With either empty the frame is answered with a ``rate_limited`` error frame
    carrying ``retry_after`` (never silently dropped) and not processed. Refused frames take a
    token from a third bucket, the connection's *abuse* allowance; a client that keeps
    sending after being told to wait empties it and is closed with 1008.

    The user's budget is shared by the user's connections on this node, so each connection
    is told its share (:meth:`Limits.advertised`): the per-connection limit, or the per-user
    one divided by the user's connection count, whichever is tighter. When that count
    changes the share of every connection of the user changes with it, and the connections
    past their welcome hear of it (:meth:`Limits.listen`; the server sends a ``limits``
    frame). Connections that pace themselves under their share never exceed the user's
    budget together.

    A connection's buckets (:meth:`Limits.frame_limiter`) are made on its first frame: an
    idle connection holds none, only its place among its user's listeners.

Connections and rooms (checked in the handshake, before the upgrade)
    Connections per user and in total, distinct rooms per user and rooms with local members
    per node. A user over its own limits gets 429, a full node 503 (try another node).
    In this protocol a connection is in exactly one room (the one in its URL), so "rooms
    per connection" is always 1; rooms per user bounds what one token can make a node
    subscribe to.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from typing import Protocol

from chatctl.protocol import RateLimit

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; a rate of 0 means unlimited."""

    __slots__ = ("_clock", "_stamp", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, *, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()

    def take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens: 0.0 when granted, else the seconds until they would be there."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= n:
            self._tokens = tokens - n
            return 0.0
        self._tokens = tokens
        return (n - tokens) / self.rate

    def full(self) -> bool:
        """True when the bucket has refilled to its burst (nothing left to remember)."""
        if self.rate <= 0:
            return True
        return self._tokens + (self._clock() - self._stamp) * self.rate >= self.burst

    def refund(self, n: float = 1.0) -> None:
        """Give back ``n`` tokens taken by a :meth:`take` whose work was not done."""
        self._tokens = min(self.burst, self._tokens + n)


@dataclass(frozen=True)
class RateSettings:
    """Frames per second (0 = unlimited) and bursts for connections and users."""

    conn_rate: float = 1000.0
    conn_burst: float = 50000.0
    user_rate: float = 2000.0
    user_burst: float = 100000.0
    #: refused frames a connection may send in a burst before it is closed with 1008 ...
    abuse_burst: float = 2000.0
    #: ... and per second once that burst is spent
    abuse_rate: float = 5.0


class Verdict(StrEnum):
    """What to do with one incoming frame."""

    ALLOW = "allow"
    REFUSE = "refuse"  # answer rate_limited with retry_after
    CLOSE = "close"  # sustained abuse: close with 1008


class ShareListener(Protocol):
    """A connection told of its share of the rate limits when it changes."""

    def share_changed(self, share: RateLimit) -> None: ...


@dataclass(eq=False, slots=True)
class FrameLimiter:
    """The buckets of one connection (its user's bucket is shared with the user's others)."""

    conn: TokenBucket
    user: TokenBucket
    abuse: TokenBucket
    refused: int = 0

    def check(self) -> tuple[Verdict, float]:
        """Take a token for one frame: ``(verdict, retry_after seconds)``."""
        wait = self.take()
        if not wait:
            return Verdict.ALLOW, 0.0
        return self.refuse(), wait

    def take(self) -> float:
        """Take a token for one frame from both buckets: 0.0 when granted, else the seconds
        until it would be (and nothing is taken)."""
        wait = self.conn.take()
        if not wait:
            wait = self.user.take()
            if wait:  # the frame is not processed: the connection keeps its token
                self.conn.refund()
        return wait

    def refuse(self) -> Verdict:
        """Count one refused frame against the abuse allowance: REFUSE, or CLOSE once the
        client has kept sending long after being told to wait."""
        self.refused += 1
        if self.abuse.take():
            return Verdict.CLOSE
        return Verdict.REFUSE


@dataclass(frozen=True)
class ConnectionSettings:
    """Handshake-time limits; 0 means unlimited."""

    max_connections: int = 10000
    max_user_connections: int = 100
    max_rooms: int = 10000
    max_user_rooms: int = 32


@dataclass(slots=True)
class _User:
    """One user's connections on the node (one of these per user: kept small)."""

    #: the room of each of the user's connections (a room twice for two connections to it):
    #: a user nearly always has one connection, and a Counter costs ~200 bytes more
    rooms: list[str] = field(default_factory=list)
    bucket: TokenBucket | None = None
    #: the user's connections past their welcome: each was last told the share of the user's
    #: current connection count (the welcome's, then every change's)
    listeners: list[ShareListener] = field(default_factory=list)

    @property
    def connections(self) -> int:
        return len(self.rooms)


class Limits:
    """Per-node bookkeeping of connections, rooms and frame-rate buckets.

    :meth:`acquire` is called when a handshake is accepted and :meth:`release` exactly once
    when that connection is gone; between them the connection counts against every limit.
    """

    def __init__(
        self,
        connections: ConnectionSettings,
        rates: RateSettings,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = connections
        self.rates = rates
        self._clock = clock
        self._users: dict[str, _User] = {}
        #: user buckets not yet refilled when their user's last connection closed: a user
        #: cannot reset its rate limit by reconnecting
        self._parked: dict[str, TokenBucket] = {}
        self._prune_at = 1024
        self._rooms: Counter[str] = Counter()
        self.total = 0
        #: the share of a user with n connections, by n: one RateLimit for all of them
        self._shares: dict[int, RateLimit | None] = {}

    def refusal(self, user: str, room: str) -> tuple[HTTPStatus, str, str] | None:
        """Why ``user`` may not open one more connection to ``room``: (status, kind, reason)."""
        s = self.settings
        u = self._users.get(user)
        if s.max_connections and self.total >= s.max_connections:
            return (
                HTTPStatus.SERVICE_UNAVAILABLE,
                "node_connections",
                f"this node is full ({s.max_connections} connections); try another node",
            )
        if s.max_rooms and room not in self._rooms and len(self._rooms) >= s.max_rooms:
            return (
                HTTPStatus.SERVICE_UNAVAILABLE,
                "node_rooms",
                f"this node serves its limit of {s.max_rooms} rooms; try another node",
            )
        if u is None:
            return None
        if s.max_user_connections and u.connections >= s.max_user_connections:
            return (
                HTTPStatus.TOO_MANY_REQUESTS,
                "user_connections",
                f"too many connections for this user (limit {s.max_user_connections})",
            )
        if s.max_user_rooms and room not in u.rooms and len(set(u.rooms)) >= s.max_user_rooms:
            return (
                HTTPStatus.TOO_MANY_REQUESTS,
                "user_rooms",
                f"this user is in too many rooms on this node (limit {s.max_user_rooms})",
            )
        return None

    def acquire(self, user: str, room: str) -> None:
        u = self._users.get(user)
        if u is None:
            u = self._users[user] = _User()
        u.rooms.append(room)
        self._rooms[room] += 1
        self.total += 1
        self._announce(u, u.connections - 1)

    def release(self, user: str, room: str) -> None:
        u = self._users.get(user)
        if u is None:
            return
        self.total -= 1
        u.rooms.remove(room)
        self._rooms[room] -= 1
        if self._rooms[room] <= 0:
            del self._rooms[room]
        if u.connections <= 0:
            del self._users[user]
            if u.bucket is not None and not u.bucket.full():
                self._parked[user] = u.bucket
                if len(self._parked) > self._prune_at:
                    self._parked = {k: b for k, b in self._parked.items() if not b.full()}
                    self._prune_at = max(1024, 2 * len(self._parked))
        else:
            self._announce(u, u.connections + 1)

    def advertised(self, user: str | None = None) -> RateLimit | None:
        """The frame-rate limit one connection of ``user`` should pace itself under: the
        per-connection limit or the user's share of the per-user one (divided by the user's
        connections on this node), whichever is tighter; None when unlimited."""
        u = self._users.get(user) if user is not None else None
        return self._share(u.connections if u is not None else 1)

    def _share(self, connections: int) -> RateLimit | None:
        """:meth:`advertised` for a user of ``connections`` connections (made once per count)."""
        n = max(1, connections)
        if n not in self._shares:
            self._shares[n] = self._compute_share(n)
        return self._shares[n]

    def _compute_share(self, n: int) -> RateLimit | None:
        r = self.rates
        pairs = [(r.conn_rate, r.conn_burst)] if r.conn_rate > 0 else []
        if r.user_rate > 0:
            pairs.append((r.user_rate / n, r.user_burst / n))
        if not pairs:
            return None
        rate = min(p[0] for p in pairs)
        burst = min(p[1] for p in pairs)
        # rounded down: the shares of a user's connections never add up to more than it has
        return RateLimit(_floor3(rate), max(1.0, _floor3(burst)))

    def _announce(self, u: _User, before: int) -> None:
        """``u``'s connection count changed from ``before``: tell its listeners their new share
        (they were all told the share of ``before`` connections)."""
        if u.listeners and self.rates.user_rate > 0:
            share = self._share(u.connections)
            if share is not None and share != self._share(before):
                for listener in u.listeners:
                    listener.share_changed(share)

    def listen(self, user: str, listener: ShareListener) -> None:
        """``listener``, a connection of ``user`` (which holds an :meth:`acquire`) just told
        :meth:`advertised`, is told every change of it from now on, until :meth:`unlisten`."""
        u = self._users.get(user)
        if u is not None:
            u.listeners.append(listener)

    def unlisten(self, user: str, listener: ShareListener) -> None:
        """``listener`` hears of no more changes (a no-op if it did not listen)."""
        u = self._users.get(user)
        if u is not None:
            for i, other in enumerate(u.listeners):
                if other is listener:
                    del u.listeners[i]
                    return

    def take_request(self, user: str) -> float:
        """Take one token from ``user``'s bucket for an HTTP request (a publish): 0.0 when
        granted, else the seconds until it would be. The bucket is the one the user's
        WebSocket connections share, so HTTP and WebSocket count in the same budget."""
        u = self._users.get(user)
        if u is not None:
            if u.bucket is None:
                r = self.rates
                u.bucket = self._parked.pop(user, None) or TokenBucket(
                    r.user_rate, r.user_burst, clock=self._clock
                )
            return u.bucket.take()
        bucket = self._parked.get(user)
        if bucket is None:
            r = self.rates
            bucket = self._parked[user] = TokenBucket(r.user_rate, r.user_burst, clock=self._clock)
            if len(self._parked) > self._prune_at:
                self._parked = {k: b for k, b in self._parked.items() if not b.full()}
                self._prune_at = max(1024, 2 * len(self._parked))
        return bucket.take()

    def frame_limiter(self, user: str) -> FrameLimiter:
        """Buckets for a connection of ``user`` (which must hold an :meth:`acquire`), made on
        its first frame."""
        r, clock = self.rates, self._clock
        u = self._users.get(user)
        if u is None:  # not acquired (direct use in tests): a private user bucket
            u = _User()
        if u.bucket is None:
            u.bucket = self._parked.pop(user, None) or TokenBucket(
                r.user_rate, r.user_burst, clock=clock
            )
        return FrameLimiter(
            conn=TokenBucket(r.conn_rate, r.conn_burst, clock=clock),
            user=u.bucket,
            abuse=TokenBucket(r.abuse_rate, r.abuse_burst, clock=clock),
        )


def _floor3(x: float) -> float:
    """``x`` rounded down to a thousandth (an int when whole, as JSON shows it)."""
    value = math.floor(x * 1000) / 1000
    return int(value) if value == int(value) else value
