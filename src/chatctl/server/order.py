"""One connection's messages are stored in the order it sent them, or not at all.

Once the server refuses a message of a connection with a retryable code
(``broker_unavailable``, ``rate_limited``), frames the client sent after it are already on
their way; storing them would put them before the refused one, which the client will send
again. So the :class:`OrderGate` of the connection closes on the refused message: every
later message of the connection is refused with the same code and ``blocked_by`` naming the
refused ``client_id``, until that ``client_id`` comes back (Kafka's idempotent producer
refuses out-of-sequence batches the same way). Then the gate opens and that message is
handled as usual (stored, or refused again, closing the gate again).

A refused message without ``client_id`` cannot be recognised when it comes back: its gate
stays closed for its ``retry_after``, and the first message after that opens it.

Frames already in flight when the client learns of the refusal are refused by the gate as a
matter of course. They count against the connection's abuse allowance as any frame does when
they are over the rate limit too; otherwise only when they keep coming :data:`GRACE` seconds
after the client was told to wait (a client ignoring the refusals). No I/O: the session asks
and answers (docs/protocol.md, "Order").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from chatctl.protocol import ErrorCode, ErrorFrame

#: Seconds after ``retry_after`` during which blocked messages are taken as frames the
#: client had already sent when it was told to wait (not as abuse).
GRACE = 5.0


class OrderGate:
    __slots__ = ("_clock", "client_id", "closed", "code", "until")

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.closed = False
        #: the refused message's code and client id (None: it had none)
        self.code = ErrorCode.BROKER_UNAVAILABLE
        self.client_id: str | None = None
        #: monotonic time at which the refused message may be sent again
        self.until = 0.0

    def refuse(self, client_id: str | None, code: ErrorCode, retry_after: float) -> None:
        """A message (``client_id``) was refused with a retryable ``code``: close the gate."""
        self.closed = True
        self.code = code
        self.client_id = client_id
        self.until = self._clock() + retry_after

    def blocked(self, client_id: str | None) -> ErrorFrame | None:
        """Before handling a message: None to handle it (the gate is open, or this is the
        refused message again, which opens it), else the error to answer it with."""
        if not self.closed:
            return None
        if self.client_id is not None:
            if client_id == self.client_id:
                self.closed = False
                return None
        elif self._clock() >= self.until:
            self.closed = False
            return None
        wait = max(0.0, self.until - self._clock())
        if self.client_id is None:
            reason = (
                "not stored: an earlier message of this connection was refused; "
                "messages are stored in the order they were sent"
            )
        else:
            reason = (
                f"not stored: message {self.client_id!r} was refused before it; "
                "send it again first, then this one"
            )
        return ErrorFrame(
            self.code,
            reason,
            client_id=client_id,
            retry_after=math.ceil(wait * 1000) / 1000,
            blocked_by=self.client_id,
        )

    def late(self) -> bool:
        """Whether a message blocked now comes long after the client was told to wait
        (counted as abuse), rather than being one it had already sent."""
        return self.closed and self._clock() > self.until + GRACE
