"""The handshake's two hooks of :class:`chatctl.server.app.ChatServer`, as a mixin:
websockets' ``process_request`` (the plain-HTTP pages, the Origin, the token and the limits,
answered 400/401/403/429 before the upgrade) and ``process_response`` (the room's broker
subscription before the 101 goes out, and a banned user's 403)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from chatctl.broker.base import Broker
from chatctl.errors import BrokerError
from chatctl.server import wire
from chatctl.server.handshake import Refusal, admit
from chatctl.server.http import OriginPolicy, malformed, plain_response, route_http
from chatctl.server.hub import Hub, peer
from chatctl.server.limits import Limits
from chatctl.server.membership import Membership
from chatctl.server.metrics import Metrics
from chatctl.server.moderation import refusal
from chatctl.server.settings import ServerSettings
from chatctl.tokens.claims import Claims

log = logging.getLogger("chatctl.server")


class Admission:
    """The handshake's hooks; the server that mixes it in sets these attributes."""

    settings: ServerSettings
    broker: Broker
    metrics: Metrics
    hub: Hub
    limits: Limits
    origins: OriginPolicy
    #: accepted handshakes whose handler has not started yet
    _members: dict[ServerConnection, Membership]
    _forget: Callable[[Membership], None]
    _tasks: set[asyncio.Future[None]]

    if TYPE_CHECKING:

        def verify_token(self, token: str) -> Claims: ...

        def health_problem(self) -> str | None: ...

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """websockets' ``process_request``: the plain-HTTP pages, then the handshake's
        checks. Whatever a request holds, it never gets a traceback into the log: a bug that
        raises here logs one line (the traceback at DEBUG) and answers 500."""
        try:
            response = malformed(request) or route_http(self, request)
            if response is not None:
                if response.status_code == HTTPStatus.BAD_REQUEST:
                    self.metrics.counters.reject("bad_request", HTTPStatus.BAD_REQUEST)
                    reason = response.body.decode().strip()
                    log.info("rejected 400 Bad Request peer=%s user=-: %s", peer(conn), reason)
                return response
            return self._admit(conn, request)
        except Exception as exc:
            log.error(
                "internal error checking a request peer=%s: %s: %r",
                peer(conn),
                type(exc).__name__,
                str(exc)[:200],
            )
            log.debug("the request check's traceback", exc_info=True)
            return plain_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n")

    def _admit(self, conn: ServerConnection, request: Request) -> Response | None:
        try:
            origin = request.headers.get_all("Origin")
            if len(origin) > 1 or not self.origins.allows(
                origin[0] if origin else None, request.headers.get("Host")
            ):
                raise Refusal(
                    HTTPStatus.FORBIDDEN,
                    "origin not allowed (see chatctl serve --allowed-origin)",
                    kind="origin",
                )
            adm = admit(
                request.path,
                request.headers,
                self.verify_token,
                max_history=self.settings.history_size,
                dms=self.settings.dms,
            )
            over = self.limits.refusal(adm.claims.user, adm.room)
            if over is not None:
                status, kind, reason = over
                raise Refusal(status, reason, user=adm.claims.user, kind=kind)
        except Refusal as refusal:
            self.metrics.counters.reject(refusal.kind, refusal.status)
            log.info(
                "rejected %d %s peer=%s user=%s: %s",
                refusal.status,
                refusal.status.phrase,
                peer(conn),
                refusal.user or "-",
                refusal.reason,
            )
            retry: tuple[tuple[str, str], ...] = ()
            if refusal.status in (HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE):
                retry = (("Retry-After", "5"),)
            return plain_response(refusal.status, refusal.reason + "\n", headers=retry)
        self._members[conn] = Membership(
            conn, adm, hub=self.hub, broker=self.broker, limits=self.limits, forget=self._forget
        )
        return None

    async def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        member = self._members.get(conn)
        if member is None:
            return None
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            del self._members[conn]
            member.release()
            return None
        wire.on_lost(conn, member.lost)
        # Subscribe before the 101 goes out: whatever is published from now on reaches it.
        try:
            banned = await self._banned(member)  # before: no subscription for a banned user
            if banned is None:
                await member.attach()
                banned = await self._banned(member)  # a ban published meanwhile
                if banned is not None:
                    await member.end()
        except BrokerError as exc:
            del self._members[conn]
            await member.end()
            self.metrics.counters.reject("broker_unavailable", HTTPStatus.SERVICE_UNAVAILABLE)
            log.warning(
                "rejected 503 peer=%s user=%s room=%s: broker unavailable: %s",
                peer(conn),
                member.user,
                member.room,
                exc,
            )
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "broker unavailable, retry later\n")
        if banned is not None:
            del self._members[conn]
            member.release()
            self.metrics.counters.reject("banned", HTTPStatus.FORBIDDEN)
            log.info("rejected 403 Forbidden peer=%s user=%s: %s", peer(conn), member.user, banned)
            return conn.respond(HTTPStatus.FORBIDDEN, banned + "\n")
        return None

    async def _banned(self, member: Membership) -> str | None:
        """Why ``member``'s user may not enter its room (a moderator banned them), or None.
        Raises ``BrokerError``."""
        if member.adm.peer is not None:
            return None  # a conversation has no moderation
        sanctions = self.hub.sanctions
        room = member.room
        copy = sanctions.cached(room) or await sanctions.of(room)
        if not copy.bans:
            return None
        now = time.time()
        entry = copy.banned(member.user, now)
        return None if entry is None else refusal(room, entry, now)

    def _forget_member(self, member: Membership) -> None:
        """The connection is gone: if its handler never ran (it died right after the 101),
        its membership ends here."""
        if self._members.pop(member.conn, None) is not None:
            task = asyncio.ensure_future(member.end())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
