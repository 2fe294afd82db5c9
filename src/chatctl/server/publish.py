"""A session's messages into the broker: each is stored, then answered with an ack or an
error frame (``broker_unavailable`` closes the connection's order gate; with
``"stored": "unknown"`` when the broker could not tell whether it stored the message).

With a :class:`~chatctl.broker.base.PipelinedBroker` (SQLite) a connection's publishes
overlap: :func:`publish_nowait` queues each with a callback and the receive loop goes on
to the next frame; a :class:`Pipeline` bounds how many wait. Otherwise :func:`publish`
awaits each in turn. Both take the connection's
:class:`~chatctl.server.session.Session` (its context, connection, admission, order gate).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Protocol

from chatctl.broker.base import PublishResult
from chatctl.errors import BrokerError, BrokerOutcomeUnknown
from chatctl.protocol import STORED_UNKNOWN, Ack, ErrorCode, ErrorFrame, SendMessage
from chatctl.server.direct import delivered

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from chatctl.server.context import SessionContext
    from chatctl.server.handshake import Admission
    from chatctl.server.order import OrderGate

log = logging.getLogger("chatctl.server")


class Session(Protocol):
    """What a publish uses of its connection's session
    (:class:`chatctl.server.session.Session` is one)."""

    ctx: SessionContext
    conn: ServerConnection
    adm: Admission
    gate: OrderGate


#: seconds a client is told to wait before re-sending a message the broker did not store
BROKER_RETRY_AFTER = 1.0
#: publishes one connection may have waiting for the broker at once, with a pipelined broker
MAX_IN_FLIGHT = 1024


class Pipeline:
    """A connection's publishes overlapping one another, with a :class:`PipelinedBroker`
    (the SQLite broker's group commit puts a burst into one transaction): each is queued
    with a callback that answers its ack or error, in the order they were queued. At most
    :data:`MAX_IN_FLIGHT` wait for the broker; the receive loop waits for room beyond."""

    __slots__ = ("_space", "in_flight")

    def __init__(self) -> None:
        self.in_flight = 0
        self._space: asyncio.Future[None] | None = None

    async def reserve(self) -> None:
        """Wait until a publish may be queued, and count it."""
        while self.in_flight >= MAX_IN_FLIGHT:
            self._space = asyncio.get_running_loop().create_future()
            await self._space
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)  # the waiter checks again

    async def drain(self) -> None:
        """Until every queued publish is answered."""
        while self.in_flight:
            self._space = asyncio.get_running_loop().create_future()
            await self._space


async def publish(session: Session, frame: SendMessage) -> None:
    seq = session.gate.seq
    started = time.perf_counter()
    adm = session.adm
    try:
        result = await session.ctx.broker.publish(
            adm.room, adm.claims.user, frame.text, kind=frame.kind, client_id=frame.client_id
        )
    except BrokerError as exc:
        _refused(session, frame, seq, exc)
        return
    _stored(session, frame, result, started)
    if adm.peer is not None and not result.duplicate:
        ctx = session.ctx
        await delivered(ctx.broker, result.message, history=ctx.settings.history_size)


def publish_nowait(session: Session, frame: SendMessage, pipeline: Pipeline) -> None:
    """Queue the publish with a pipelined broker; its ack or error is written when the
    broker calls back (in the order of the connection's messages)."""
    seq = session.gate.seq
    started = time.perf_counter()

    def done(result: PublishResult | None, error: Exception | None) -> None:
        pipeline.release()
        if result is not None:
            _stored(session, frame, result, started)
        elif isinstance(error, BrokerError):
            _refused(session, frame, seq, error)
        else:  # a bug in the broker: the client hears of it as of a broker failure
            log.error("publish failed", exc_info=error)
            _refused(session, frame, seq, BrokerError(f"internal error: {error!r}"))

    pipelined, adm = session.ctx.pipelined, session.adm
    assert pipelined is not None
    pipelined.publish_nowait(
        adm.room,
        adm.claims.user,
        frame.text,
        kind=frame.kind,
        client_id=frame.client_id,
        done=done,
    )


def _refused(session: Session, frame: SendMessage, seq: int, exc: BrokerError) -> None:
    """Answer a message the broker did not store. The broker answers a connection's
    messages in order, and fails every one in flight behind a failed one: the first of them
    closes the gate and is answered with its own error, the others as blocked by it."""
    ctx = session.ctx
    ctx.metrics.counters.error(ErrorCode.BROKER_UNAVAILABLE)
    code, client_id = ErrorCode.BROKER_UNAVAILABLE, frame.client_id
    error = session.gate.refuse(seq, client_id, code, BROKER_RETRY_AFTER, answered=True)
    if error is None:
        reason = f"message not stored, retry later: {exc}"
        if isinstance(exc, BrokerOutcomeUnknown):
            reason = f"message maybe stored, send it again with the same client_id: {exc}"
        error = ErrorFrame(code, reason, client_id=client_id, retry_after=BROKER_RETRY_AFTER)
    if isinstance(exc, BrokerOutcomeUnknown):
        error = dataclasses.replace(error, stored=STORED_UNKNOWN)
    ctx.hub.write(session.conn, error.frame().encode())


def _stored(session: Session, frame: SendMessage, result: PublishResult, started: float) -> None:
    metrics = session.ctx.metrics
    metrics.publish_seconds.observe(time.perf_counter() - started)
    metrics.counters.messages_in += 1
    if frame.client_id is not None:
        msg = result.message
        room = session.adm.label
        ack = Ack(frame.client_id, msg.id, room, msg.ts, result.duplicate, result.epoch)
        if session.ctx.hub.write(session.conn, ack.frame().encode()):
            metrics.counters.acks += 1
