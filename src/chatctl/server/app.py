"""The chat server: websockets' asyncio server wired to the handshake, the hub and a broker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from chatctl import __version__
from chatctl.broker.base import Broker
from chatctl.errors import ChatctlError, ConfigError, TokenError
from chatctl.protocol import (
    CloseCode,
)
from chatctl.server import wire
from chatctl.server.admission import Admission
from chatctl.server.context import SessionContext
from chatctl.server.direct import Inboxes
from chatctl.server.expiry import ExpiryQueue
from chatctl.server.http import OriginPolicy
from chatctl.server.httpapi.front import HttpFront
from chatctl.server.httpapi.routes import takes_over
from chatctl.server.hub import Hub
from chatctl.server.limits import Limits
from chatctl.server.membership import Membership
from chatctl.server.metrics import Metrics
from chatctl.server.revocation import Revoker
from chatctl.server.session import Session
from chatctl.server.settings import ServerSettings
from chatctl.tokens.claims import Claims
from chatctl.tokens.verify import Verifier

log = logging.getLogger("chatctl.server")


class ChatServer(Admission):
    """Owns the listening socket, the hub and the broker; ``async with`` runs it."""

    def __init__(
        self,
        settings: ServerSettings,
        verifier: Verifier,
        broker: Broker,
        *,
        load_verifier: Callable[[], Verifier] | None = None,
    ) -> None:
        self.settings = settings
        #: checks every handshake's and refresh's token; replaced by :meth:`reload_key`
        self.verifier = verifier
        #: reads the token key again from where it came from (SIGHUP), if it can be
        self.load_verifier = load_verifier
        self.broker = broker
        self.metrics = Metrics(self)
        self.hub = Hub(
            broker,
            max_pending=settings.max_pending_bytes,
            counters=self.metrics.counters,
            observe_fanout=self.metrics.fanout_seconds.observe,
        )
        self.limits = Limits(settings.limits, settings.rates)
        self.origins = OriginPolicy(settings.allowed_origins)
        self.node_id = secrets.token_hex(4)
        self.server_name = f"chatctl/{__version__}"
        expiries = ExpiryQueue(leeway=verifier.leeway, counters=self.metrics.counters)
        #: revoked tokens: --revoked-tokens, the broker's store, POST /api/revoke
        self.revocations = Revoker(broker, expiries, settings.revoked_tokens)
        self.context = SessionContext(
            settings,
            broker,
            self.hub,
            self.limits,
            self.metrics,
            self.server_name,
            verify_token=self.verify_token,
            expiries=expiries,
            revocations=self.revocations,
            inboxes=Inboxes(broker, self.hub, history=settings.history_size)
            if settings.dms
            else None,
        )
        #: the HTTP API on the same port (server/httpapi/)
        self.http = HttpFront(self.context)
        #: accepted handshakes whose handler has not started yet
        self._members: dict[ServerConnection, Membership] = {}
        #: one bound method for every Membership (not one per connection)
        self._forget = self._forget_member
        self._conn_ids = itertools.count(1)
        self._ws: Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        #: the close code of a shutdown in progress (1001, or 1012 for a SIGTERM drain)
        self._closing_code: int | None = None

    def verify_token(self, token: str) -> Claims:
        """Verify ``token`` with the current key, and refuse a revoked one (raises
        :class:`TokenError`)."""
        claims = self.verifier.verify(token)
        reason = self.revocations.reason(claims)
        if reason is not None:
            raise TokenError(reason)
        return claims

    def reload_key(self) -> bool:
        """Read the token secret or public key again (SIGHUP): new handshakes and refreshes
        are verified with it; open connections keep going until their token expires. On
        failure the old key stays and the error is logged. Never logs the key."""
        try:
            self.revocations.reload_file()
        except ConfigError as exc:
            log.error("SIGHUP: revoked tokens not reloaded, keeping the list: %s", exc)
        if self.load_verifier is None:
            log.warning("SIGHUP: this server's token key cannot be reloaded")
            return False
        try:
            verifier = self.load_verifier()
        except ChatctlError as exc:
            log.error("SIGHUP: token key not reloaded, keeping the current one: %s", exc)
            return False
        old, self.verifier = self.verifier, verifier
        log.info(
            "SIGHUP: token key reloaded from %s (%s)",
            verifier.origin or "its source",
            "unchanged"
            if verifier.same_key(old)
            else "changed: tokens signed with the old key are refused from now on",
        )
        return True

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        s = self.settings
        tls = None
        if s.certfile is not None:
            from chatctl.server.tls import server_context

            tls = server_context(s.certfile, s.keyfile)
        await self.broker.start()
        await self.revocations.start()
        self.metrics.loop_lag.start()
        connection = wire.connection_class(takes_over, self.http.take)
        self._ws = await serve(
            self._handler,
            s.host,
            s.port,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=s.max_frame_bytes,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            compression="deflate" if s.compression else None,
            server_header=self.server_name,
            open_timeout=s.handshake_timeout or None,
            ssl=tls,
            reuse_port=s.reuse_port or None,
            create_connection=connection,
        )
        # No connection object exists yet (nothing was awaited since the socket started
        # listening): warm_up's comes first, and keeps the others small.
        wire.warm_up(self._ws, connection)

    @property
    def scheme(self) -> str:
        """``wss`` with TLS, else ``ws``."""
        return "wss" if self.settings.certfile is not None else "ws"

    @property
    def draining(self) -> bool:
        return self._closing_code is not None

    def broker_healthy(self) -> bool:
        try:
            return bool(self.broker.healthy())
        except Exception:
            return False

    def health_problem(self) -> str | None:
        """None when this node serves and its broker works, else why not (for /healthz)."""
        if self._ws is None or self.draining:
            return "draining: not accepting connections"
        if not self.broker_healthy():
            problem = getattr(self.broker, "problem", None)  # a broker may say why
            detail = problem() if callable(problem) else None
            return f"broker unavailable: {detail}" if detail else "broker unavailable"
        return None

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        assert self._ws is not None
        sock = next(iter(self._ws.sockets))
        port: int = sock.getsockname()[1]
        return port

    async def stop(self, *, code: int = CloseCode.GOING_AWAY) -> None:
        """Stop accepting, close every client with ``code`` and release the broker, all
        within ``settings.shutdown_timeout`` (then the remaining connections are aborted).

        ``code`` is 1001 (going away) for a plain stop and 1012 (service restart) for a drain:
        clients reconnect, to another node behind the same address, and resume.
        """
        if self._ws is None:
            return
        ws, self._ws = self._ws, None
        self._closing_code = code
        self.metrics.loop_lag.stop()
        ws.close(close_connections=False)
        self.http.close()
        reason = (
            "server restarting" if code == CloseCode.SERVICE_RESTART else "server shutting down"
        )
        try:
            async with asyncio.timeout(self.settings.shutdown_timeout):
                await asyncio.gather(
                    *(conn.close(code, reason) for conn in ws.connections),
                    return_exceptions=True,
                )
                await ws.wait_closed()
        except TimeoutError:
            log.warning("shutdown: %d connections did not close in time", len(ws.all_connections))
            for conn in list(ws.all_connections):
                wire.abort(conn)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # let the handlers run their cleanup
                    await ws.wait_closed()
        await self.revocations.stop()
        await self.broker.close()

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_until_signal(self) -> None:
        """Serve (once started) until SIGINT or SIGTERM, then shut down cleanly.

        SIGTERM drains: clients are closed with 1012 (service restart) so they reconnect and
        resume elsewhere; SIGINT closes them with 1001 (going away). SIGHUP reloads the
        token key (:meth:`reload_key`).
        """
        loop = asyncio.get_running_loop()
        received: asyncio.Future[signal.Signals] = loop.create_future()

        def on_signal(sig: signal.Signals) -> None:
            if not received.done():
                received.set_result(sig)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload_key)
        try:
            sig = await received
            code = CloseCode.SERVICE_RESTART if sig == signal.SIGTERM else CloseCode.GOING_AWAY
            log.info(
                "%s: %s %d connections with %d (at most %.1fs)",
                sig.name,
                "draining" if code == CloseCode.SERVICE_RESTART else "shutting down, closing",
                self.limits.total,
                code,
                self.settings.shutdown_timeout,
            )
            await self.stop(code=code)  # a second signal meanwhile is absorbed by on_signal
            log.info("stopped")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    # ---------------------------------------------------------------- connection

    def _handler(self, conn: ServerConnection) -> Coroutine[Any, Any, None]:
        """websockets' connection handler: not a coroutine of its own but the session's
        (:meth:`~chatctl.server.session.Session.run` does the whole connection), so an idle
        connection holds one coroutine frame, not two nested. websockets awaits what it
        returns at once, as it would a coroutine function's."""
        member = self._members.pop(conn)
        conn_id = f"{self.node_id}-{next(self._conn_ids)}"
        return Session(self.context, member).run(conn_id, closing=self._closing_code)
