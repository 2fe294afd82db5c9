"""The event loop's end of the SQLite writer: ops in submission order, each batch run on the
loop (a few publishes, the thread idle) or handed to the writer thread, and every outcome
handed back to the broker in that order.

Everything submitted in one turn of the loop reaches the writer at once (waking the thread
once per turn, not once per message, keeps the GIL with the loop). When a failure begins a
refusal episode, everything still in flight is failed too before the episode's
:class:`~chatctl.broker.sqlite.ops.Resume` marker is queued (see
:mod:`chatctl.broker.sqlite.writer`): nothing submitted before a refusal commits after it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from chatctl.broker.base import PublishDone, PublishResult
from chatctl.broker.sqlite.ops import Failure, Item, Op, Publish, Reply, Resume
from chatctl.broker.sqlite.writer import Writer
from chatctl.errors import BrokerError, BrokerUnavailable
from chatctl.protocol import Message

log = logging.getLogger("chatctl.broker.sqlite")

#: Publishes a batch may hold to be committed on the loop's thread when the writer thread is
#: idle (see :mod:`chatctl.broker.sqlite.writer`); bigger batches, a burst, go to the thread.
#: 256 rows are ~1.5 ms of the loop; in the thread each statement's GIL hand-over can cost a
#: switch interval under load, and a batch sent there sends the next ones there too, until
#: the thread has caught up: a loop that fell behind for a moment (a busy machine) got stalls
#: of 100 ms and more from batches of 35-62. On 2 cores the thread brought no throughput (send
#: of 100k lines: 25.3-26.5k lines/s at 4, 24.1-25.9k at 64, the thread idle at 64).
INLINE_MAX = 256
#: The interpreter's switch interval (seconds) while the writer thread has work: every
#: statement it runs gives the GIL up and waits for it back, by default up to 5 ms when the
#: loop is busy; 0.5 ms makes a transaction there cost a few ms, not tens.
THREAD_SWITCH_INTERVAL = 0.0005
#: A connection's pipelined burst comes 32 frames to a turn of the loop
#: (``session.FRAMES_PER_TURN``): a turn that queued this many publishes puts their commit
#: off to the end of the next turn, and so on while more come, up to GATHER_MAX, so that
#: one BEGIN/COMMIT serves more rows (a commit writes the same few WAL pages for 32 rows as
#: for 128). A chat's message or two is committed at the end of its turn as before.
#: Server CPU for ``send`` of 100k lines (five alternated rounds, loaded VM): 3.18-3.76 s,
#: median 3.51, against 3.62-3.95 (3.84) flushing every turn; ``--memory`` 2.87-2.99.
GATHER_MIN = 32
GATHER_MAX = 128
#: the ops a batch committed on the loop may hold (a tuple: isinstance is faster with one)
_ANSWERED = (Publish, Reply)


class Dispatcher:
    """Submits ops to ``writer`` and reports each outcome: a stored publish to
    ``delivered(op)``, a refused one to ``refused(op, error)``; a :class:`Reply` is answered
    here, any other op's future resolved (or failed) here."""

    def __init__(
        self,
        writer: Writer,
        *,
        inline: bool,
        delivered: Callable[[Publish], None],
        refused: Callable[[Publish, Exception], None],
    ) -> None:
        self.writer: Writer | None = writer
        #: whether small batches may be committed on the loop (not with synchronous=full)
        self._inline = inline
        self._delivered = delivered
        self._refused = refused
        self._outbox: list[Item] = []
        #: how many the outbox held when its flush was last put off
        self._gathered = 0
        #: ops submitted and not yet finished, in submission order
        self._pending: dict[Op, None] = {}
        #: ops handed to the writer thread and not yet reported back by it
        self._with_thread = 0
        #: the switch interval to restore once the thread has no more work
        self._switch_interval = sys.getswitchinterval()
        writer.done = self.finished

    def submit(self, op: Op) -> None:
        """Queue ``op``; BrokerUnavailable once the database is closed."""
        if self.writer is None:
            raise BrokerUnavailable("the database is closed")
        self._pending[op] = None
        self._queue(op)

    def _queue(self, item: Item) -> None:
        if not self._outbox:
            self._gathered = 0
            asyncio.get_running_loop().call_soon(self._turn_ended)
        self._outbox.append(item)

    def _turn_ended(self) -> None:
        """Flush what this turn of the loop queued; a burst (:data:`GATHER_MIN` or more,
        still growing, under :data:`GATHER_MAX`) waits for the next turn's first."""
        n = len(self._outbox)
        if GATHER_MIN <= n < GATHER_MAX and n > self._gathered:
            self._gathered = n
            asyncio.get_running_loop().call_soon(self._turn_ended)
            return
        self.flush()

    def flush(self) -> None:
        """Hand what is queued to the writer now."""
        items, self._outbox = self._outbox, []
        if not items:
            return
        w = self.writer
        if w is None:
            closed = BrokerUnavailable("the database is closed")
            for item in items:
                if isinstance(item, Op) and item in self._pending:
                    self.fail(item, closed)
            return
        if (
            not self._with_thread
            and len(items) <= INLINE_MAX
            and self._inline
            and w.fault is None
            and all(isinstance(i, _ANSWERED) for i in items)
            # the thread is idle: no hops for a message or two (unless another process
            # holds the write lock: then the thread waits for it, not the loop)
            and w.run_here(items)
        ):
            return
        ops = sum(isinstance(i, Op) for i in items)
        if ops and not self._with_thread:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, THREAD_SWITCH_INTERVAL))
        self._with_thread += ops
        w.submit(items)

    def finished(self, batch: list[Op], failure: Failure | None) -> None:
        """On the loop, after each transaction: deliver, answer, resolve."""
        if self._with_thread:  # not for a batch run here (the thread had nothing)
            self._with_thread -= len(batch)
            if not self._with_thread:
                sys.setswitchinterval(self._switch_interval)
        if failure is not None:
            self._failed(batch, failure)
            return
        pending = self._pending
        for op in batch:
            pending.pop(op, None)
            if isinstance(op, Publish):
                self._delivered(op)
            elif isinstance(op, Reply):
                _replied(op)
            else:
                future = op.future
                if future is not None and not future.done():
                    future.set_result(op.result)

    def _failed(self, batch: list[Op], failure: Failure) -> None:
        """Fail the batch; when the failure begins a refusal episode, fail everything still
        in flight too (the writer refuses it: it is queued before the Resume marker), then
        let the writer try again."""
        error = failure.error
        exc = (
            BrokerUnavailable(f"database write failed: {error}")
            if failure.unavailable
            else BrokerError(f"database error: {error}")
        )
        for op in batch:
            if op in self._pending:
                self.fail(op, exc)
        if failure.episode is not None:
            for op in list(self._pending):
                self.fail(op, exc)
            self._queue(Resume(failure.episode))

    def fail(self, op: Op, exc: Exception) -> None:
        del self._pending[op]
        if isinstance(op, Publish):
            op.error = exc
            self._refused(op, exc)
            call(op.done, None, exc)
        elif isinstance(op, Reply):
            call(op.done, None, exc)
        else:
            future = op.future
            if future is not None and not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: the awaiting caller may be gone


def _replied(op: Reply) -> None:
    """Answer a repeated client id: the original, or the outcome of the one it followed."""
    if op.original is not None:
        call(op.done, PublishResult(op.original, duplicate=True, epoch=op.epoch), None)
        return
    first = op.follows
    assert first is not None
    if isinstance(first.result, Message):
        call(op.done, PublishResult(first.result, duplicate=True, epoch=op.epoch), None)
    else:
        call(op.done, None, first.error or BrokerUnavailable("the message was not stored"))


def call(done: PublishDone | None, result: PublishResult | None, error: Exception | None) -> None:
    """One caller's answer; its failure (a bug) must not cost the rest of the batch theirs."""
    if done is None:
        return
    try:
        done(result, error)
    except Exception:
        log.exception("a publish callback failed")
