"""The chat server: websockets' asyncio server wired to the handshake, the hub and a broker."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import signal
import time
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chatctl import __version__
from chatctl.auth import Verifier
from chatctl.broker.base import Broker
from chatctl.protocol import (
    DEFAULT_HISTORY,
    DEFAULT_WELCOME_HISTORY,
    MAX_FRAME_BYTES,
    MAX_MESSAGE_CHARS,
    CloseCode,
)
from chatctl.server.handshake import Admission, Refusal, admit
from chatctl.server.hub import Hub, peer
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
    shutdown_timeout: float = 5.0


class ChatServer:
    """Owns the listening socket, the hub and the broker; ``async with`` runs it."""

    def __init__(self, settings: ServerSettings, verifier: Verifier, broker: Broker) -> None:
        self.settings = settings
        self.verifier = verifier
        self.broker = broker
        self.hub = Hub(broker, max_pending=settings.max_pending_bytes)
        self.node_id = secrets.token_hex(4)
        self.server_name = f"chatctl/{__version__}"
        self._admissions: dict[ServerConnection, Admission] = {}
        self._conn_ids = itertools.count(1)
        self._ws: Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self.messages_in = 0
        self.errors: Counter[str] = Counter()
        self.rejections: Counter[int] = Counter()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self.broker.start()
        s = self.settings
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
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        assert self._ws is not None
        sock = next(iter(self._ws.sockets))
        port: int = sock.getsockname()[1]
        return port

    async def stop(self, *, code: int = CloseCode.GOING_AWAY) -> None:
        """Stop accepting, close every client with ``code`` and release the broker."""
        if self._ws is None:
            return
        ws, self._ws = self._ws, None
        ws.close(close_connections=False)
        try:
            async with asyncio.timeout(self.settings.shutdown_timeout):
                await asyncio.gather(
                    *(conn.close(code, "server shutting down") for conn in ws.connections),
                    return_exceptions=True,
                )
                await ws.wait_closed()
        except TimeoutError:
            log.warning("shutdown: %d connections did not close in time", len(ws.connections))
            for conn in ws.connections:
                conn.transport.abort()
        await self.broker.close()

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_until_signal(self) -> None:
        """Serve (once started) until SIGINT or SIGTERM, then shut down cleanly."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
            log.info("shutting down: closing %d connections", self.hub.connections)
            await self.stop()  # a second signal meanwhile is absorbed by the same handler
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    # ---------------------------------------------------------------- handshake

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        try:
            adm = admit(
                request.path,
                request.headers,
                self.verifier,
                max_history=self.settings.history_size,
            )
        except Refusal as refusal:
            self.rejections[refusal.status] += 1
            log.info(
                "rejected %d %s peer=%s user=%s: %s",
                refusal.status,
                refusal.status.phrase,
                peer(conn),
                refusal.user or "-",
                refusal.reason,
            )
            return conn.respond(refusal.status, refusal.reason + "\n")
        self._admissions[conn] = adm
        return None

    async def _process_response(
        self, conn: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        adm = self._admissions.get(conn)
        if adm is None or response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            self._admissions.pop(conn, None)
            return None
        # Subscribe before the 101 goes out: whatever is published from now on reaches it.
        await self.hub.attach(adm.room, conn)
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
            await self.broker.join(room, user, conn_id)
            await run_session(self, conn, adm)
        finally:
            await self.hub.detach(room, conn)
            try:
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
