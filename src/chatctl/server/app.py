"""The chat server: websockets' asyncio server wired to the handshake, the hub and a broker."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chatctl import __version__
from chatctl.auth import Verifier
from chatctl.broker.base import Broker
from chatctl.errors import BrokerError
from chatctl.protocol import (
    DEFAULT_HISTORY,
    DEFAULT_WELCOME_HISTORY,
    MAX_FRAME_BYTES,
    MAX_MESSAGE_CHARS,
    CloseCode,
)
from chatctl.server.handshake import Admission, Refusal, admit
from chatctl.server.http import OriginPolicy, plain_response, route_http
from chatctl.server.hub import Hub, peer
from chatctl.server.limits import ConnectionSettings, Limits, RateSettings
from chatctl.server.metrics import Metrics
from chatctl.server.session import run_session

log = logging.getLogger("chatctl.server")


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    history_size: int = DEFAULT_HISTORY
    welcome_history: int = DEFAULT_WELCOME_HISTORY
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_message_chars: int = MAX_MESSAGE_CHARS
    #: bytes of unsent output a connection may have before it is dropped as a slow consumer
    max_pending_bytes: int = 1024 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    compression: bool = False
    #: seconds a shutdown or SIGTERM drain may take before remaining connections are aborted
    shutdown_timeout: float = 5.0
    #: seconds a client has for the TCP, TLS and WebSocket opening handshakes together
    handshake_timeout: float = 10.0
    #: serve wss:// with this PEM certificate chain (and key, unless ``keyfile`` is given)
    certfile: Path | None = None
    keyfile: Path | None = None
    #: browser origins allowed besides the server's own (see server/http.py); "*" allows all
    allowed_origins: tuple[str, ...] = ()
    rates: RateSettings = field(default_factory=RateSettings)
    limits: ConnectionSettings = field(default_factory=ConnectionSettings)
    #: bind with SO_REUSEPORT, so that ``serve --workers`` processes share the port
    reuse_port: bool = False


class ChatServer:
    """Owns the listening socket, the hub and the broker; ``async with`` runs it."""

    def __init__(self, settings: ServerSettings, verifier: Verifier, broker: Broker) -> None:
        self.settings = settings
        self.verifier = verifier
        self.broker = broker
        self.metrics = Metrics(self)
        self.hub = Hub(
            broker,
            max_pending=settings.max_pending_bytes,
            observe_fanout=self.metrics.fanout_seconds.observe,
        )
        self.limits = Limits(settings.limits, settings.rates)
        self.origins = OriginPolicy(settings.allowed_origins)
        self.node_id = secrets.token_hex(4)
        self.server_name = f"chatctl/{__version__}"
        self._admissions: dict[ServerConnection, Admission] = {}
        self._conn_ids = itertools.count(1)
        self._ws: Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        #: connection -> (user, room) while it counts against the connection limits
        self._slots: dict[ServerConnection, tuple[str, str]] = {}
        #: the close code of a shutdown in progress (1001, or 1012 for a SIGTERM drain)
        self._closing_code: int | None = None
        self.messages_in = 0
        self.acks = 0
        self.policy_closes = 0
        self.errors: Counter[str] = Counter()
        self.rejections: Counter[int] = Counter()  # by HTTP status
        #: (reason, HTTP status) -> handshakes refused, for /metrics
        self.rejection_reasons: Counter[tuple[str, int]] = Counter()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        s = self.settings
        tls = None
        if s.certfile is not None:
            from chatctl.server.tls import server_context

            tls = server_context(s.certfile, s.keyfile)
        await self.broker.start()
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
        )

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
            return "broker unavailable"
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
        ws.close(close_connections=False)
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
                conn.transport.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):  # let the handlers run their cleanup
                    await ws.wait_closed()
        await self.broker.close()

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_until_signal(self) -> None:
        """Serve (once started) until SIGINT or SIGTERM, then shut down cleanly.

        SIGTERM drains: clients are closed with 1012 (service restart) so they reconnect and
        resume elsewhere; SIGINT closes them with 1001 (going away).
        """
        loop = asyncio.get_running_loop()
        received: asyncio.Future[signal.Signals] = loop.create_future()

        def on_signal(sig: signal.Signals) -> None:
            if not received.done():
                received.set_result(sig)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            sig = await received
            code = CloseCode.SERVICE_RESTART if sig == signal.SIGTERM else CloseCode.GOING_AWAY
            log.info(
                "%s: %s %d connections with %d (at most %.1fs)",
                sig.name,
                "draining" if code == CloseCode.SERVICE_RESTART else "shutting down, closing",
                self.hub.connections,
                code,
                self.settings.shutdown_timeout,
            )
            await self.stop(code=code)  # a second signal meanwhile is absorbed by on_signal
            log.info("stopped")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    # ---------------------------------------------------------------- handshake

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        response = route_http(self, request)
        if response is not None:
            return response
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
                self.verifier,
                max_history=self.settings.history_size,
            )
            over = self.limits.refusal(adm.claims.user, adm.room)
            if over is not None:
                status, kind, reason = over
                raise Refusal(status, reason, user=adm.claims.user, kind=kind)
        except Refusal as refusal:
            self.rejections[refusal.status] += 1
            self.rejection_reasons[refusal.kind, refusal.status] += 1
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
        self.limits.acquire(adm.claims.user, adm.room)
        self._slots[conn] = (adm.claims.user, adm.room)
        self._admissions[conn] = adm
        return None

    def _release(self, conn: ServerConnection) -> None:
        """The connection no longer counts against the limits (idempotent)."""
        slot = self._slots.pop(conn, None)
        if slot is not None:
            self.limits.release(*slot)

    async def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        adm = self._admissions.get(conn)
        if adm is None or response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            self._admissions.pop(conn, None)
            self._release(conn)
            return None
        conn.connection_lost_waiter.add_done_callback(lambda _: self._release(conn))
        # Subscribe before the 101 goes out: whatever is published from now on reaches it.
        try:
            await self.hub.attach(adm.room, conn)
        except BrokerError as exc:
            self._admissions.pop(conn, None)
            self.rejections[HTTPStatus.SERVICE_UNAVAILABLE] += 1
            log.warning(
                "rejected 503 peer=%s user=%s room=%s: broker unavailable: %s",
                peer(conn),
                adm.claims.user,
                adm.room,
                exc,
            )
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "broker unavailable, retry later\n")
        conn.connection_lost_waiter.add_done_callback(lambda _: self._forget(conn, adm.room))
        return None

    def _forget(self, conn: ServerConnection, room: str) -> None:
        """The connection died before its handler ran: undo :meth:`Hub.attach`."""
        if self._admissions.pop(conn, None) is not None:
            task = asyncio.ensure_future(self.hub.detach(room, conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- connection

    async def _handler(self, conn: ServerConnection) -> None:
        adm = self._admissions.pop(conn)
        user, room = adm.claims.user, adm.room
        conn_id = f"{self.node_id}-{next(self._conn_ids)}"
        started = time.monotonic()
        log.info("connect user=%s room=%s peer=%s conn=%s", user, room, peer(conn), conn_id)
        try:
            if self._closing_code is not None:  # accepted just as the shutdown began
                await conn.close(self._closing_code, "server shutting down")
                return
            if adm.presence:
                await self.broker.join(room, user, conn_id)
            await run_session(self, conn, adm)
        except BrokerError as exc:  # no welcome without the broker: ask the client to retry
            log.warning(
                "closing user=%s room=%s conn=%s with 1013: broker unavailable: %s",
                user,
                room,
                conn_id,
                exc,
            )
            await conn.close(CloseCode.TRY_AGAIN_LATER, "broker unavailable, retry later")
        finally:
            self._release(conn)
            await self.hub.detach(room, conn)
            try:
                if adm.presence:
                    await self.broker.leave(room, user, conn_id)
            except Exception as exc:  # the broker may be down; presence expires by itself
                log.warning("presence leave failed for conn=%s: %s", conn_id, exc)
            log.info(
                "disconnect user=%s room=%s peer=%s conn=%s code=%s after %.1fs",
                user,
                room,
                peer(conn),
                conn_id,
                conn.close_code,
                time.monotonic() - started,
            )

    def count_error(self, code: str) -> None:
        self.errors[code] += 1
