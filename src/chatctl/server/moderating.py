"""A connection's ``moderate`` and ``delete`` frames: checked, carried out in the broker,
then announced in the room (docs/protocol.md, "Moderation").

An action is carried out in this order: the claim is checked (``forbidden`` without it, or
in a direct conversation); the state is written to the broker (a sanction, or a message's
tombstone); then the announcement, a message of kind ``moderation`` by the moderator, is
published through the room's log, so that it has an id, is acked (the request's
``client_id``), reaches every node in order (each node's hub then closes a kicked or banned
user's connections: :meth:`~chatctl.server.moderation.Sanctions.apply`) and is replayed to
a resuming client. Every action is logged at INFO. A refused request changes nothing and
the connection goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from chatctl.broker.base import Moderates, SanctionEntry
from chatctl.errors import BrokerError
from chatctl.protocol import Ack, ErrorCode, ErrorFrame, Message
from chatctl.protocol.moderation import Delete, Moderate, Moderation

if TYPE_CHECKING:
    from chatctl.server.publish import Session

log = logging.getLogger("chatctl.server")

#: seconds a client waits before sending again a request the broker did not take
RETRY_AFTER = 1.0

_PAST = {"kick": "kicked", "mute": "muted", "unmute": "unmuted", "ban": "banned"}
_PAST["unban"] = "unbanned"
_PAST["delete"] = "deleted"


class Refused(Exception):
    def __init__(self, code: ErrorCode, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason, self.retry_after = code, reason, retry_after


async def moderate(session: Session, frame: Moderate, user: str) -> None:
    """Answer a ``moderate`` frame of ``user`` (the connection's current token's)."""
    await _answer(session, frame.client_id, _moderate(session, frame, user))


async def delete(session: Session, frame: Delete, user: str) -> None:
    """Answer a ``delete`` frame of ``user``."""
    await _answer(session, frame.client_id, _delete(session, frame, user))


Done = tuple[Message, bool, str | None]


async def _answer(session: Session, client_id: str | None, work: Coroutine[Any, Any, Done]) -> None:
    ctx = session.ctx
    try:
        msg, duplicate, epoch = await work
    except Refused as exc:
        ctx.metrics.counters.error(exc.code)
        error = ErrorFrame(exc.code, exc.reason, client_id=client_id, retry_after=exc.retry_after)
        ctx.hub.write(session.conn, error.frame().encode())
        return
    if client_id is not None:
        ack = Ack(client_id, msg.id, session.adm.label, msg.ts, duplicate, epoch)
        ctx.hub.write(session.conn, ack.frame().encode())


def _store(session: Session, *, in_conversation: bool = False) -> Moderates:
    """The broker's moderation store; a conversation has none of its moderation (but for
    ``in_conversation``: a user deletes their own messages there too)."""
    adm = session.adm
    if adm.peer is not None and not in_conversation:
        raise Refused(ErrorCode.FORBIDDEN, "a direct conversation has no moderation")
    store = session.ctx.hub.sanctions.store
    if store is None:
        raise Refused(ErrorCode.FORBIDDEN, "this server's broker keeps no moderation")
    return store


def _unavailable(exc: BrokerError) -> Refused:
    return Refused(
        ErrorCode.BROKER_UNAVAILABLE,
        f"not carried out, retry later: broker unavailable: {exc}",
        RETRY_AFTER,
    )


async def _moderate(session: Session, frame: Moderate, by: str) -> Done:
    room = session.adm.room
    store = _store(session)
    claims = session.adm.claims
    if not _moderates(session, room):
        raise Refused(ErrorCode.FORBIDDEN, f"token for {claims.user} does not moderate room {room}")
    action, target = frame.action, frame.user
    if target == by:
        raise Refused(ErrorCode.INVALID_FIELD, f"a moderator cannot {action} themselves")
    now = time.time()
    until = None if frame.duration is None else now + frame.duration
    try:
        if action in ("mute", "ban"):
            entry = SanctionEntry(target, action, until, frame.reason, by)
            await store.set_sanction(room, entry)
        elif action in ("unmute", "unban"):
            kind = "mute" if action == "unmute" else "ban"
            if not await store.lift_sanction(room, target, kind):  # type: ignore[arg-type]
                state = "muted in" if kind == "mute" else "banned from"
                raise Refused(ErrorCode.NOT_FOUND, f"{target} is not {state} {room}")
    except BrokerError as exc:
        raise _unavailable(exc) from None
    record = Moderation(action, target, frame.reason, until)
    return await _announce(session, record, by, frame.client_id, now)


async def _delete(session: Session, frame: Delete, by: str) -> Done:
    room, label = session.adm.room, session.adm.label  # label: "@bob" for a conversation
    store = _store(session, in_conversation=True)
    missing = Refused(ErrorCode.NOT_FOUND, f"no message #{frame.id} in {label} (or deleted)")
    try:
        found = await store.message(room, frame.id)
        if found is None or found.kind == "moderation":
            raise missing
        if found.user != by and not _moderates(session, room):
            who = "its author" if session.adm.peer is not None else f"a moderator of {room}"
            raise Refused(
                ErrorCode.FORBIDDEN,
                f"message #{frame.id} is {found.user}'s: only {who} deletes it",
            )
        if not await store.delete_message(room, frame.id):
            raise missing
    except BrokerError as exc:
        raise _unavailable(exc) from None
    record = Moderation("delete", found.user, frame.reason, target_id=frame.id)
    return await _announce(session, record, by, frame.client_id, time.time())


def _moderates(session: Session, room: str) -> bool:
    claims = session.adm.claims
    expiry = getattr(session, "expiry", None)  # its refreshed token's claims, once welcomed
    if expiry is not None:
        claims = expiry.claims
    return claims.moderates(room)


async def _announce(
    session: Session, record: Moderation, by: str, client_id: str | None, now: float
) -> Done:
    """Publish the announcement of what was carried out at ``now``; log it."""
    ctx, room = session.ctx, session.adm.room
    store = ctx.hub.sanctions.store
    assert store is not None  # checked by _store()
    try:
        result = await store.publish(
            room,
            by,
            record.describe(by, now=now),  # "for 10m" as asked, however long the store took
            kind="moderation",
            client_id=client_id,
            moderation=record,
        )
    except BrokerError as exc:
        log.warning("moderation by %s in %s done but not announced: %s", by, room, exc)
        raise _unavailable(exc) from None
    msg = result.message
    if not result.duplicate:
        what = (
            f"#{record.target_id} of {record.target}"
            if record.action == "delete"
            else record.target
        )
        line = f"moderation: {by} {_PAST[record.action]} {what} in {room}"
        if record.until is not None:
            line += f" until {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(record.until))}"
        log.info("%s: %s", line, record.reason) if record.reason else log.info("%s", line)
        sanctions = ctx.hub.sanctions
        sanctions.actions[record.action] = sanctions.actions.get(record.action, 0) + 1
        if room not in ctx.hub.rooms:  # not live here: no delivery will apply it on this node
            sanctions.apply(msg)
    return msg, result.duplicate, result.epoch
