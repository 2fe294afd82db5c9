"""``GET /rooms/{room}/events``: one room as Server-Sent Events (``text/event-stream``).

The stream starts like a WebSocket connection (docs/protocol.md, "Resume"): a ``welcome``
event (``epoch``, ``last_id``, ``users``, and ``recovered`` when resuming), then the history
it carries as ``message`` events, then the room live: ``message``, ``presence`` and
``presence_batch`` events, each with the frame as its JSON data. Every ``message`` event has
``id: EPOCH:ID``, so a reconnecting ``EventSource`` sends ``Last-Event-ID`` and resumes
after it without a gap or a duplicate; a ``Last-Event-ID`` of another epoch (the room's ids
restarted) gets every message of the new epoch and ``recovered: false``, and a reset while
streaming ends the stream with a ``reset`` event, so the client reconnects and resumes; a
gap in the node's live feed (messages trimmed before it could deliver them) that the stream
had not covered ends it with a ``gap`` event, and the resume's welcome says
``recovered: false``.
A comment line every :data:`KEEPALIVE` seconds keeps proxies from closing an idle stream.
The reader is listed in the room's users while it reads, as a WebSocket member is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any

from chatctl.broker.base import Gap, History, Reset
from chatctl.errors import BrokerError
from chatctl.protocol import Message, Presence, parse_epoch, parse_history, parse_since, relabel
from chatctl.server.context import SessionContext
from chatctl.server.httpapi.answers import ApiError, Reply
from chatctl.server.httpapi.exchange import Exchange
from chatctl.server.httpapi.reads import broker_unavailable
from chatctl.server.httpapi.routes import authorize_room, check_sanctions
from chatctl.server.members import Event

#: seconds between two keep-alive comments of an idle stream
KEEPALIVE = 15.0
#: milliseconds an EventSource waits before it reconnects (the stream's ``retry:``)
RETRY_MS = 2000
CONTENT_TYPE = "text/event-stream; charset=utf-8"


def sse(event: str, data: str, *, id: str | None = None) -> bytes:
    """One event; ``data`` is one line of JSON."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def resume_point(exchange: Exchange) -> tuple[int | None, str | None]:
    """``(since, epoch)`` from ``Last-Event-ID: EPOCH:ID`` or ``?since=&epoch=``."""
    last = exchange.request.header("last-event-id")
    try:
        if last:
            epoch, _, since = last.strip().rpartition(":")
            return parse_since(since), parse_epoch(epoch) if epoch else None
        request = exchange.request
        return parse_since(request.param("since")), parse_epoch(request.param("epoch"))
    except ValueError as exc:
        raise ApiError(400, "invalid_field", f"bad resume point: {exc}") from None


async def _history(
    ctx: SessionContext, room: str, since: int | None, epoch: str | None, count: int | None
) -> History:
    broker, settings = ctx.broker, ctx.settings
    if since is None:
        limit = settings.welcome_history if count is None else count
        return await broker.history(room, since=None, limit=limit)
    found = await broker.history(room, since=since, limit=settings.history_size)
    if epoch is not None and epoch != found.epoch:
        fresh = await broker.history(room, since=0, limit=settings.history_size)
        return History(fresh.messages, fresh.last_id, fresh.epoch, complete=False)
    return found


async def stream(ctx: SessionContext, exchange: Exchange, name: str) -> Reply | None:
    room, claims = authorize_room(ctx, exchange, name)
    await check_sanctions(ctx, room, claims.user, writing=False)
    user = claims.user
    since, epoch = resume_point(exchange)
    try:
        count = parse_history(exchange.request.param("history"), cap=ctx.settings.history_size)
    except ValueError as exc:
        raise ApiError(400, "invalid_field", str(exc)) from None
    over = ctx.limits.refusal(user, room)
    if over is not None:
        status, _, reason = over
        code = "rate_limited" if status == 429 else "unavailable"
        raise ApiError(int(status), code, reason, retry_after=5.0)
    if exchange.request.method == "HEAD":
        return Reply(200, b"", content_type=CONTENT_TYPE)
    queue: list[Event | Reset | Gap] = []
    wake = asyncio.Event()

    def listener(event: Event | Reset | Gap) -> None:
        queue.append(event)
        wake.set()

    conn_id = "sse-" + secrets.token_hex(4)
    ctx.limits.acquire(user, room)
    joined = listening = False
    watch = ctx.revocations.watch(claims.slim(), exchange.conn.close)  # closed if revoked
    expiry = _end_at_expiry(ctx, exchange, claims.exp)
    try:
        try:
            await ctx.hub.listen(room, listener)
            listening = True
            await ctx.broker.join(room, user, conn_id)
            joined = True
            found = await _history(ctx, room, since, epoch, count)
            users = await ctx.broker.users(room)
        except BrokerError as exc:
            raise broker_unavailable(exc) from None
        exchange.start_stream(CONTENT_TYPE, [("Cache-Control", "no-store")])
        welcome = {
            "type": "welcome",
            "user": user,
            "room": name,
            "epoch": found.epoch,
            "last_id": found.last_id,
            "since": since,
            "recovered": None if since is None else found.complete,
            "users": users,
            "user_count": len(users),
            "server": ctx.server_name,
        }
        head = f"retry: {RETRY_MS}\n".encode()
        eid = None if found.messages else f"{found.epoch}:{found.last_id}"
        exchange.write(head + sse("welcome", json.dumps(welcome, separators=(",", ":")), id=eid))
        for msg in found.messages:
            frame = relabel(msg.frame, room, name)
            exchange.write(sse("message", frame, id=f"{found.epoch}:{msg.id}"))
        # the welcome listed the reader: its own join, come meanwhile, is not news to it
        own = ("join", user)
        queue[:] = [e for e in queue if not (isinstance(e, Presence) and (e.event, e.user) == own)]
        await _live(ctx, exchange, queue, wake, found.epoch, found.last_id, user, (room, name))
    finally:
        ctx.revocations.unwatch(watch)
        if expiry is not None:
            expiry.cancel()
        if listening:
            await ctx.hub.unlisten(room, listener)
        if joined:
            # the broker may be down; presence expires by itself
            with contextlib.suppress(Exception):
                await ctx.broker.leave(room, user, conn_id)
        ctx.limits.release(user, room)
    return None


def _end_at_expiry(
    ctx: SessionContext, exchange: Exchange, exp: float | None
) -> asyncio.TimerHandle | None:
    """End the stream when the token expires (plus the leeway a WebSocket gets before its
    4001), with an ``expired`` event first: an ``EventSource`` reconnecting with the same
    token is then refused with 401 and gives up, as a WebSocket client must get a new
    token."""
    if exp is None:
        return None

    def end() -> None:
        frame = {"type": "expired", "reason": "token expired: get a new one and reconnect"}
        exchange.write(sse("expired", json.dumps(frame, separators=(",", ":"))))
        exchange.end()

    delay = max(0.0, exp + ctx.expiries.leeway - time.time())
    return asyncio.get_running_loop().call_later(delay, end)


async def _live(
    ctx: SessionContext,
    exchange: Exchange,
    queue: list[Event | Reset | Gap],
    wake: asyncio.Event,
    epoch: str,
    last_id: int,
    user: str,
    names: tuple[str, str],
) -> None:
    """Write the room's events as they come; end the stream when the room's history was
    lost (a ``reset``), when the live feed lost messages this stream has not sent (a
    ``gap``), or when a moderator kicked or banned ``user`` (after that message:
    reconnecting after a ban is refused with 403). ``names``: the room as the broker names
    it and as the reader did (``@bob`` for a conversation: the name every frame carries)."""
    lost = exchange.closed

    room, label = names

    def write(out: bytes | bytearray) -> bool:
        data = bytes(out)
        if room != label:
            data = relabel(data.decode(), room, label).encode()
        return exchange.write(data)

    while not lost.done():
        waiter: asyncio.Future[Any] = asyncio.ensure_future(wake.wait())
        waits: set[asyncio.Future[Any]] = {waiter, lost}
        done, _ = await asyncio.wait(waits, timeout=KEEPALIVE, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if lost.done():
            return
        if not done:
            if not exchange.write(b": keep-alive\n\n"):
                return
            continue
        wake.clear()
        events, queue[:] = list(queue), []
        out = bytearray()
        for event in events:
            if isinstance(event, Reset):
                reset = {"type": "reset", "room": event.room, "epoch": event.epoch}
                write(bytes(out) + sse("reset", json.dumps(reset)))
                exchange.end()
                return
            if isinstance(event, Gap):
                if last_id >= event.next_id - 1:  # its welcome carried what the feed lost
                    continue
                gap = {"type": "gap", "room": event.room, "after_id": event.after_id}
                write(bytes(out) + sse("gap", json.dumps({**gap, "next_id": event.next_id})))
                exchange.end()
                return
            if isinstance(event, Message):
                if event.id <= last_id:
                    continue
                last_id = event.id
                out += sse("message", event.frame, id=f"{epoch}:{event.id}")
                record = event.moderation
                if record and record.target == user and record.action in ("kick", "ban"):
                    write(out)
                    exchange.end()
                    return
            else:
                out += sse(event.TYPE, event.frame)
        ctx.metrics.counters.deliveries += len(events)
        if out and not write(out):
            return
