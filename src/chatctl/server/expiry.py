"""A connection lives as long as its token: closed with 4001 at ``exp`` plus the verifier's
leeway, unless a ``refresh`` frame brought a fresh token first (docs/protocol.md).

::

    expiry = TokenExpiry(conn, claims, leeway=5.0, counters=counters, label="user=alice …")
    expiry.start()                    # after the welcome
    answer = expiry.refresh(verify(token), room)   # a refreshed frame or an error frame
    expiry.cancel()                   # the connection ended

The refresh token is verified by the caller exactly as the handshake's (the server's current
key, so after a SIGHUP key reload old-key tokens are refused); here it must also be for the
same user and still allow the room.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from websockets.asyncio.server import ServerConnection

from chatctl.auth import Claims, format_time
from chatctl.errors import PermissionDenied
from chatctl.protocol import CloseCode, ErrorCode, ErrorFrame, Refreshed
from chatctl.server import wire
from chatctl.server.hub import CLOSE_GRACE
from chatctl.server.metrics import Counters

log = logging.getLogger("chatctl.server")

#: The close reason sent with 4001.
EXPIRED_REASON = "token expired"
#: Seconds between two refresh frames of one connection that are verified (each costs a
#: signature check; a client renews once per token lifetime).
MIN_REFRESH_INTERVAL = 1.0


class TokenExpiry:
    """The timer that closes one connection when its token expires."""

    def __init__(
        self,
        conn: ServerConnection,
        claims: Claims,
        *,
        leeway: float,
        counters: Counters,
        label: str = "",
    ) -> None:
        self.conn = conn
        self.counters = counters
        self.user = claims.user
        self.exp = claims.exp
        self.leeway = leeway
        self.label = label
        self._timer: asyncio.TimerHandle | None = None
        self._last_refresh = -math.inf

    def start(self) -> None:
        """Arm the timer for the current ``exp`` (replacing any earlier one)."""
        self.cancel()
        if self.exp is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.exp + self.leeway - time.time())
        self._timer = loop.call_at(loop.time() + delay, self._expire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def throttled(self) -> float | None:
        """Seconds until another refresh frame may be verified, or None (and the clock
        starts again): at most one per :data:`MIN_REFRESH_INTERVAL`."""
        now = time.monotonic()
        wait = self._last_refresh + MIN_REFRESH_INTERVAL - now
        if wait > 0:
            return wait
        self._last_refresh = now
        return None

    def refresh(self, claims: Claims, room: str) -> Refreshed | ErrorFrame:
        """Take a verified token's claims: the connection now ends at their ``exp``.

        Another user's token is ``invalid_token``, one that does not allow ``room`` is
        ``forbidden``; either leaves the current expiry as it was."""
        if claims.user != self.user:
            return ErrorFrame(
                ErrorCode.INVALID_TOKEN,
                f"token is for {claims.user}, this connection for {self.user}",
            )
        try:
            claims.check_room(room)
        except PermissionDenied as exc:
            return ErrorFrame(ErrorCode.FORBIDDEN, str(exc))
        self.exp = claims.exp
        self.start()
        self.counters.token_refreshes += 1
        log.debug("token refreshed %s until %s", self.label, format_time(self.exp or 0))
        return Refreshed(self.user, self.exp or 0)

    def _expire(self) -> None:
        self._timer = None
        if wire.close_now(self.conn, CloseCode.TOKEN_EXPIRED, EXPIRED_REASON, grace=CLOSE_GRACE):
            self.counters.token_expiries += 1
            log.info(
                "closing %s with %d: token expired at %s",
                self.label,
                CloseCode.TOKEN_EXPIRED,
                format_time(self.exp or 0),
            )
