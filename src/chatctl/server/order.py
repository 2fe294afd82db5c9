"""One connection's messages are stored in the order it sent them, or not at all.

Once the server refuses a message of a connection with a retryable code
(``broker_unavailable``, ``rate_limited``), frames the client sent after it are already on
their way; storing them would put them before the refused one, which the client will send
again. So the :class:`OrderGate` of the connection closes on the refused message: every
later message of the connection is refused with the same code and ``blocked_by`` naming the
refused ``client_id``, until that ``client_id`` comes back (Kafka's idempotent producer
refuses out-of-sequence batches the same way). Then the gate opens and that message is
handled as usual (stored, or refused again, closing the gate again).

The gate waits for the EARLIEST refused message, in the order the connection sent them,
and never moves forward past it (Kafka refuses out-of-sequence batches relative to the
first failed sequence number). Each message let through gets its place (:attr:`seq`); a
broker that fails a write fails the connection's later messages already handed to it too
(``PipelinedBroker``), and their refusals, which come after the first one, are answered as
blocked by it. A refusal of an earlier message than the one the gate waits for (the rate
limit refuses at once, the broker answers later) moves the gate back to it. Refusals of
messages let through behind a refused one that arrive after it came back are answered as
blocked by it too: the client re-sends them after it anyway.

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
    __slots__ = ("_casualties", "_clock", "client_id", "closed", "code", "head", "seq", "until")

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.closed = False
        #: the refused message's code and client id (None: it had none)
        self.code = ErrorCode.BROKER_UNAVAILABLE
        self.client_id: str | None = None
        #: monotonic time at which the refused message may be sent again
        self.until = 0.0
        #: messages let through so far: the last one's place in the connection's order
        self.seq = 0
        #: the place of the refused message the gate waits for (or last waited for)
        self.head = 0
        #: (head, reopened, client id): the messages let through after a refused one and
        #: before it came back, whose refusals may still be on their way (None: none)
        self._casualties: list[tuple[int, int, str | None]] | None = None

    def refuse(
        self,
        seq: int,
        client_id: str | None,
        code: ErrorCode,
        retry_after: float,
        *,
        answered: bool = False,
    ) -> ErrorFrame | None:
        """Message ``seq`` (``client_id``) was refused with a retryable ``code``.

        None when the gate now waits for it: it is the earliest refused message, and the
        caller answers it with its own error. Otherwise the error to answer it with, with
        ``blocked_by`` the earlier refused message it was sent after (a message already in
        flight when that one was refused: the client re-sends it after that one).
        ``answered``: every message before ``seq`` has had its answer (a broker answers in
        order), so the refusals of those let through before an earlier reopening are all in.
        """
        casualties = self._casualties
        if casualties is not None:
            if answered:
                casualties[:] = [c for c in casualties if c[1] > seq]
            for head, reopened, head_id in casualties:
                if head < seq < reopened:
                    return self._error(client_id, head_id, 0.0)
            if not casualties:
                self._casualties = None
        if self.closed and seq > self.head:
            return self._error(client_id, self.client_id, self.until - self._clock())
        # the first refusal, or one of an earlier message than the gate waits for (a rate
        # limit refuses at once, a broker answers later): wait for this one
        self.closed = True
        self.head = seq
        self.code = code
        self.client_id = client_id
        self.until = self._clock() + retry_after
        return None

    def blocked(self, client_id: str | None) -> ErrorFrame | None:
        """Before handling a message: None to let it through (the gate is open, or this is
        the refused message again, which opens it; it is then message :attr:`seq`), else
        the error to answer it with."""
        if self.closed:
            if self.client_id is not None:
                if client_id != self.client_id:
                    return self._error(client_id, self.client_id, self.until - self._clock())
            elif self._clock() < self.until:
                return self._error(client_id, None, self.until - self._clock())
            self.closed = False
            if self.seq > self.head:  # some were let through behind the refused one
                if self._casualties is None:
                    self._casualties = []
                self._casualties.append((self.head, self.seq + 1, self.client_id))
        self.seq += 1
        return None

    def _error(self, client_id: str | None, blocked_by: str | None, wait: float) -> ErrorFrame:
        if blocked_by is None:
            reason = (
                "not stored: an earlier message of this connection was refused; "
                "messages are stored in the order they were sent"
            )
        else:
            reason = (
                f"not stored: message {blocked_by!r} was refused before it; "
                "send it again first, then this one"
            )
        return ErrorFrame(
            self.code,
            reason,
            client_id=client_id,
            retry_after=math.ceil(max(0.0, wait) * 1000) / 1000,
            blocked_by=blocked_by,
        )

    def late(self) -> bool:
        """Whether a message blocked now comes long after the client was told to wait
        (counted as abuse), rather than being one it had already sent."""
        return self.closed and self._clock() > self.until + GRACE
