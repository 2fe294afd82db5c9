"""One client connection after the upgrade: welcome, then one receive loop until it closes.

The loop keeps the connection's messages in the order it sent them (an
:class:`~chatctl.server.order.OrderGate`). A session sees its server through a
:class:`~chatctl.server.context.SessionContext` (settings, broker, hub, limits, metrics,
token check, expiry queue); its room, and changes of its rate-limit share, through a
:class:`~chatctl.server.membership.Membership`; its token's expiry through a
:class:`~chatctl.server.expiry.TokenExpiry` (closed with 4001 unless refreshed). Its state
is one :class:`Session` object, made when its handler starts. What it is sent of the room's
history (the welcome, ``history`` pages) is :mod:`~chatctl.server.replay`'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from chatctl.errors import BrokerError, PermissionDenied, TokenError
from chatctl.protocol import (
    ClientFrame,
    CloseCode,
    Delete,
    ErrorCode,
    ErrorFrame,
    HistoryRequest,
    Moderate,
    Ping,
    Pong,
    ProtocolError,
    Refresh,
    Refreshed,
    SendMessage,
    UserList,
    Who,
    parse_client_frame,
)
from chatctl.server import plaintext, wire
from chatctl.server.context import SessionContext
from chatctl.server.direct import check_dms
from chatctl.server.expiry import TokenExpiry
from chatctl.server.handshake import Admission
from chatctl.server.hub import CLOSE_GRACE, peer
from chatctl.server.limits import FrameLimiter, Verdict
from chatctl.server.membership import Membership
from chatctl.server.moderating import delete, moderate
from chatctl.server.moderation import RoomSanctions, refusal
from chatctl.server.order import OrderGate
from chatctl.server.publish import Pipeline, publish, publish_nowait
from chatctl.server.replay import answer_history, write_welcome

log = logging.getLogger("chatctl.server")

#: frames a connection may have handled before it lets the other connections run
FRAMES_PER_TURN = 32


class Session:
    """One connection's state, from its handler's start to its end, and what its receive
    loop does with it: the server's handler returns ``Session(ctx, member).run(...)``.

    Made once per connection. What an idle connection does not need is made on its first
    frame (:meth:`_first_frame`): until then ``limiter`` and ``gate`` are unset slots (no
    buckets, no gate; docs/performance.md, "Memory per idle connection"), as ``expiry`` is
    until the welcome is written."""

    # one per connection, for its whole life: no __dict__
    __slots__ = ("adm", "conn", "ctx", "expiry", "gate", "limiter", "member", "pipeline")

    #: the connection's frame-rate buckets, from its first frame
    limiter: FrameLimiter
    #: holds its messages back behind a refused one (docs/protocol.md, "Order"), from its
    #: first frame
    gate: OrderGate
    #: the token's expiry, queued once the welcome is written
    expiry: TokenExpiry

    def __init__(self, ctx: SessionContext, member: Membership) -> None:
        self.ctx = ctx
        self.member = member
        self.conn: ServerConnection = member.conn
        self.adm: Admission = member.adm
        #: its publishes overlapping one another, with a pipelined broker (first frame)
        self.pipeline: Pipeline | None = None

    async def run(self, conn_id: str, *, closing: int | None = None) -> None:
        """The server's whole connection handler, from the 101 to the end: the room hears
        of the connection, the client is welcomed, its frames are answered one at a time
        until it goes away, then its membership ends. ``closing``: the close code of a
        shutdown that began as it was accepted.

        ``ChatServer._handler`` returns this coroutine rather than awaiting it in one of its
        own, and the receive loop is in it rather than in a coroutine of its own, so an idle
        connection holds one coroutine frame, not two nested.
        """
        ctx, member, conn = self.ctx, self.member, self.conn
        user = member.user
        started = time.monotonic()
        log.info("connect user=%s room=%s peer=%s conn=%s", user, member.room, peer(conn), conn_id)
        if self.adm.text:
            ctx.hub.plain.add(conn)
        try:
            if closing is not None:  # accepted just as the shutdown began
                await conn.close(closing, "server shutting down")
                return
            await member.join(conn_id)
            last_id = await self._welcome()
            if ctx.inboxes is not None and self.adm.receive and not self.adm.text:
                # told of direct messages, on any connection (server/direct.py)
                ctx.inboxes.enter(user, conn, reading=self.adm.peer, last_id=last_id)
            expiry = self.expiry = TokenExpiry(member, ctx.expiries)
            expiry.start()
            first, burst = True, 0
            try:
                # recv(), not `async for`: websockets' __aiter__ is an async generator around
                # it (~350 bytes per connection); every close raises ConnectionClosed here.
                while True:
                    if not wire.frames_queued(conn):
                        burst = 0  # recv() waits: the other connections run meanwhile
                    elif burst >= FRAMES_PER_TURN:
                        # recv() does not yield while frames are queued, and one TCP read can
                        # queue thousands of small ones: let the other connections have a turn.
                        burst = 0
                        await asyncio.sleep(0)
                    data = await conn.recv()
                    burst += 1
                    if first:
                        first = False
                        self._first_frame()
                    if not await self.receive(data):
                        self._close_abusive()
                        return
            except ConnectionClosed:
                pass  # closed, normally or not (1006, 1009…); the disconnect line logs the code
            finally:
                expiry.cancel()
                if self.pipeline is not None:
                    await self.pipeline.drain()
        except BrokerError as exc:  # no welcome without the broker: ask the client to retry
            log.warning(
                "closing user=%s room=%s conn=%s with 1013: broker unavailable: %s",
                user,
                member.room,
                conn_id,
                exc,
            )
            await conn.close(CloseCode.TRY_AGAIN_LATER, "broker unavailable, retry later")
        finally:
            if ctx.inboxes is not None:
                ctx.inboxes.leave(user, conn)
            await member.end()
            ctx.hub.plain.discard(conn)
            log.info(
                "disconnect user=%s room=%s peer=%s conn=%s code=%s after %.1fs",
                user,
                member.room,
                peer(conn),
                conn_id,
                conn.close_code,
                time.monotonic() - started,
            )

    def _first_frame(self) -> None:
        """Make what the loop needs once the client sends: an idle connection holds no
        buckets, gate or pipeline."""
        ctx = self.ctx
        if ctx.pipelined is not None and self.adm.peer is None:
            self.pipeline = Pipeline()  # a conversation's publish also tells its inbox
        self.limiter = ctx.limits.frame_limiter(self.member.user)
        self.gate = OrderGate()

    async def _welcome(self) -> int:
        """Write the welcome and let live events flow; return the last id it told.

        A coroutine of its own so that the history and the user list it carried are garbage
        once it is written, not locals of the receive loop for the life of the connection."""
        return await write_welcome(self.ctx, self.member)

    async def receive(self, data: str | bytes) -> bool:
        """Answer one client frame; False when the client is to be closed for abuse.

        Every frame takes a token from the rate limits. A message is then held back by the
        order gate if an earlier one of the connection was refused and not sent again
        (docs/protocol.md, "Order"); refused over the rate limit (closing the gate); or
        published (a broker failure closes the gate too). With a pipelined broker the
        publish overlaps the next frames: a failure closes the gate for the frames read
        after it, and the broker fails the publishes already handed to it behind the failed
        one (none of them commits: ``PipelinedBroker``); the gate stays on the first refused
        message, and answers those as blocked by it (:meth:`OrderGate.refuse`). The gate
        holds messages only: a ``refresh`` (like ``who``, ``ping`` and ``history``) is
        answered whatever it holds, or the token of a connection waiting on a refused
        message would expire behind it.
        """
        ctx, conn, limiter = self.ctx, self.conn, self.limiter
        hub = ctx.hub
        wait = limiter.take()
        frame: ClientFrame
        try:
            if self.adm.text:
                frame = plaintext.parse(data, max_chars=ctx.settings.max_message_chars)
            else:
                frame = parse_client_frame(data, max_chars=ctx.settings.max_message_chars)
        except ProtocolError as exc:
            if wait:
                return self._rate_limited(exc.client_id, wait)
            ctx.metrics.counters.error(exc.code)
            hub.write(conn, ErrorFrame.of(exc).frame().encode())
            return True
        if isinstance(frame, SendMessage):
            claims = self.expiry.claims
            adm = self.adm  # a conversation is written by both its users, whatever the globs
            if claims.read_rooms and adm.peer is None and not claims.writes(adm.room):
                ctx.metrics.counters.error(ErrorCode.READ_ONLY)
                reason = f"token for {claims.user} only reads room {self.adm.room}"
                error = ErrorFrame(ErrorCode.READ_ONLY, reason, client_id=frame.client_id)
                hub.write(conn, error.frame().encode())
                return True
            sanctions = hub.sanctions.cached(adm.room)
            if sanctions is None:  # a room not live here (a write-only connection's)
                try:
                    sanctions = await hub.sanctions.of(adm.room)
                except BrokerError as exc:
                    log.warning("sanctions of room %s unavailable: %s", adm.room, exc)
                    sanctions = None
            if (
                sanctions is not None
                and (sanctions.mutes or sanctions.bans)
                and self._sanctioned(sanctions, frame.client_id)
            ):
                return True
            gate = self.gate
            blocked = gate.blocked(frame.client_id)
            if blocked is not None:
                # Held back, not refused for abuse: the client sent it before it heard of the
                # refusal. It counts against the abuse allowance as before when it is also
                # over the rate limit, or when it keeps coming long after the client was told
                # to wait.
                if (wait or gate.late()) and limiter.refuse() == Verdict.CLOSE:
                    return False
                ctx.metrics.counters.error(blocked.code)
                hub.write(conn, blocked.frame().encode())
                return True
            if wait:
                gate.refuse(gate.seq, frame.client_id, ErrorCode.RATE_LIMITED, wait)
                return self._rate_limited(frame.client_id, wait)
            pipeline = self.pipeline
            if pipeline is None:
                await publish(self, frame)
            else:
                await pipeline.reserve()
                publish_nowait(self, frame, pipeline)
        elif wait:
            client_id = frame.client_id if isinstance(frame, HistoryRequest) else None
            return self._rate_limited(client_id, wait)
        elif isinstance(frame, HistoryRequest):
            await self._history(frame)
        elif isinstance(frame, Who):
            adm = self.adm
            users = await ctx.broker.users(adm.room)
            hub.write(conn, UserList(adm.label, users).frame().encode())
            hub.listed(adm.room, conn, adm.claims.user)  # its list is new: see Hub.listed
        elif isinstance(frame, Ping):
            hub.write(conn, Pong(frame.data).frame().encode())
        elif isinstance(frame, Moderate):
            await moderate(self, frame, self.member.user)
        elif isinstance(frame, Delete):
            await delete(self, frame, self.member.user)
        elif isinstance(frame, Refresh):
            self._refresh(frame)
        return True

    def _sanctioned(self, sanctions: RoomSanctions, client_id: str | None) -> bool:
        """Refuse a message of a user muted (or banned) in the room, for good (not a
        retryable refusal: the order gate stays open); True when refused."""
        now, user = time.time(), self.member.user
        entry = sanctions.muted(user, now) or sanctions.banned(user, now)
        if entry is None:
            return False
        code = ErrorCode.MUTED if entry.kind == "mute" else ErrorCode.FORBIDDEN
        self.ctx.metrics.counters.error(code)
        error = ErrorFrame(code, refusal(self.adm.room, entry, now), client_id=client_id)
        self.ctx.hub.write(self.conn, error.frame().encode())
        return True

    async def _history(self, frame: HistoryRequest) -> None:
        await answer_history(self.ctx, self.conn, self.adm, frame)

    def _refresh(self, frame: Refresh) -> None:
        """Verify a fresh token as the handshake would; the connection then lives until its
        exp."""
        ctx, expiry = self.ctx, self.expiry
        wait = expiry.throttled()
        if wait is not None:
            ctx.metrics.counters.error(ErrorCode.RATE_LIMITED)
            error = ErrorFrame(
                ErrorCode.RATE_LIMITED,
                "one refresh per second: retry after retry_after seconds",
                retry_after=math.ceil(wait * 1000) / 1000,
            )
            ctx.hub.write(self.conn, error.frame().encode())
            return
        adm = self.adm
        try:
            claims = ctx.verify_token(frame.token)
            if adm.peer is not None:
                check_dms(claims, enabled=ctx.settings.dms)
        except TokenError as exc:
            answer: Refreshed | ErrorFrame = ErrorFrame(ErrorCode.INVALID_TOKEN, str(exc))
        except PermissionDenied as exc:
            answer = ErrorFrame(ErrorCode.FORBIDDEN, str(exc))
        else:
            answer = expiry.refresh(claims, None if adm.peer is not None else adm.room)
        if isinstance(answer, ErrorFrame):
            ctx.metrics.counters.error(answer.code)
            log.info("refused a refresh from %s: %s", expiry.label, answer.reason)
        ctx.hub.write(self.conn, answer.frame().encode())

    def _rate_limited(self, client_id: str | None, wait: float) -> bool:
        """Refuse one frame over the rate limit with an error frame (never a silent drop);
        False when the client has kept sending long after being told to wait."""
        if self.limiter.refuse() == Verdict.CLOSE:
            return False
        ctx = self.ctx
        ctx.metrics.counters.error(ErrorCode.RATE_LIMITED)
        error = ErrorFrame(
            ErrorCode.RATE_LIMITED,
            "too many frames: wait retry_after seconds, then send again",
            client_id=client_id,
            retry_after=math.ceil(wait * 1000) / 1000,
        )
        ctx.hub.write(self.conn, error.frame().encode())
        return True

    def _close_abusive(self) -> None:
        """Close with 1008 a connection that kept sending over the rate limit."""
        conn = self.conn
        # Not conn.close(): it would wait for the client's close frame behind the frames it
        # is still flooding us with, which nobody reads any more (websockets stops at
        # max_queue).
        if not wire.close_now(
            conn, CloseCode.POLICY_VIOLATION, "rate limit exceeded repeatedly", grace=CLOSE_GRACE
        ):
            return
        self.ctx.metrics.counters.policy_closes += 1
        log.warning(
            "closing user=%s peer=%s with 1008: %d frames over the rate limit",
            self.member.user,
            peer(conn),
            self.limiter.refused,
        )
