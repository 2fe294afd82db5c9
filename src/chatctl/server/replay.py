"""What a connection is sent of its room's history: the welcome (its history, cut to fit the
connection's bound on pending output, and ``more`` when the rest is still kept) and the
answers to ``history`` requests (docs/protocol.md, "Older messages" and "Resuming without
gaps or duplicates")."""

from __future__ import annotations

import logging

from websockets.asyncio.server import ServerConnection

from chatctl.broker.base import History
from chatctl.errors import BrokerError
from chatctl.protocol import (
    MAX_WELCOME_USERS,
    ErrorCode,
    ErrorFrame,
    HistoryPage,
    HistoryRequest,
    RateLimit,
    Welcome,
)
from chatctl.server.context import SessionContext
from chatctl.server.handshake import Admission
from chatctl.server.membership import Membership

log = logging.getLogger("chatctl.server")


async def write_welcome(ctx: SessionContext, member: Membership) -> int:
    """Write ``member``'s welcome and let live events flow; return the last id it told."""
    adm = member.adm
    kept = await welcome_history(ctx, adm)
    history = fit(kept, ctx.settings.max_pending_bytes)
    # cut only to fit the pending-output bound, everything after `since` still kept: the
    # client pages the rest with history requests (docs/protocol.md, "Older messages")
    more = adm.since is not None and kept.complete and not history.complete
    del kept
    users = await ctx.broker.users(member.room)
    welcome = Welcome(
        user=member.user,
        room=adm.label,
        epoch=history.epoch,
        last_id=history.last_id,
        history=history.messages,
        users=users[:MAX_WELCOME_USERS],
        since=adm.since,
        recovered=None if adm.since is None else history.complete,
        server=ctx.server_name,
        limits=limits_dict(ctx.limits.advertised(member.user)),
        user_count=len(users),
        more=more,
    )
    ctx.hub.write(member.conn, welcome.frame().encode())
    member.ready(history.last_id)
    return history.last_id


async def answer_history(
    ctx: SessionContext, conn: ServerConnection, adm: Admission, frame: HistoryRequest
) -> None:
    """Answer a ``history`` request with the newest ``limit`` kept messages below
    ``before``: one more is asked of the broker to learn whether older ones are kept
    (``more``). A page whose frames would not fit in the connection's pending-output
    bound is cut from the oldest end (``more`` then says so)."""
    room = adm.room
    try:
        kept = await ctx.broker.history(
            room, since=None, limit=frame.limit + 1, before=frame.before
        )
    except BrokerError as exc:
        log.warning("history of room %s unavailable: %s", room, exc)
        ctx.metrics.counters.error(ErrorCode.BROKER_UNAVAILABLE)
        error = ErrorFrame(
            ErrorCode.BROKER_UNAVAILABLE,
            "history unavailable: retry after retry_after seconds",
            client_id=frame.client_id,
            retry_after=1.0,
        )
        ctx.hub.write(conn, error.frame().encode())
        return
    messages = kept.messages[-frame.limit :]
    page = fit(History(messages, kept.last_id, kept.epoch), ctx.settings.max_pending_bytes)
    more = len(page.messages) < len(kept.messages)
    answer = HistoryPage(adm.label, kept.epoch, page.messages, more, frame.client_id)
    ctx.hub.write(conn, answer.frame().encode())


def limits_dict(share: RateLimit | None) -> dict[str, float] | None:
    return None if share is None else share.figures()


def fit(history: History, budget: int) -> History:
    """Keep the newest messages whose frames fit in ``budget`` bytes; if older ones are left
    out, the history is not complete (a resuming client is told ``recovered: false``, and
    ``more: true`` when the broker still keeps the ones left out).

    Without this, ``?history=1000`` on a room of long messages makes every handshake cost
    megabytes of output that a client which never reads leaves pending in the server.
    """
    total, keep = 0, 0
    for msg in reversed(history.messages):
        total += len(msg.frame.encode()) + 1
        if total > budget:
            break
        keep += 1
    if keep == len(history.messages):
        return history
    kept = history.messages[len(history.messages) - keep :]
    return History(kept, history.last_id, history.epoch, complete=False)


async def welcome_history(ctx: SessionContext, adm: Admission) -> History:
    broker, settings = ctx.broker, ctx.settings
    if adm.since is None:
        limit = settings.welcome_history if adm.history is None else adm.history
        return await broker.history(adm.room, since=None, limit=limit)
    history = await broker.history(adm.room, since=adm.since, limit=settings.history_size)
    if adm.epoch is not None and adm.epoch != history.epoch:
        # The room's ids restarted since the client last saw it: its `since` means nothing
        # here, and everything of the new epoch is news to it, from id 1 (not only the recent
        # --welcome-history: a client cut off by the reset would miss the rest).
        fresh = await broker.history(adm.room, since=0, limit=settings.history_size)
        return History(fresh.messages, fresh.last_id, fresh.epoch, complete=False)
    return history
