"""``chatctl serve``: turn flags into a running :class:`~chatctl.server.ChatServer`."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chatctl.auth import Verifier
from chatctl.broker import create_broker
from chatctl.config import resolve_secret
from chatctl.errors import UsageError
from chatctl.log import setup_logging
from chatctl.server import ChatServer, ServerSettings
from chatctl.server.limits import ConnectionSettings, RateSettings

log = logging.getLogger("chatctl.server")
_RATES = RateSettings()
_CONNS = ConnectionSettings()


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    history: int = 1000
    welcome_history: int = 20
    secret_file: Path | None = None
    public_key: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "chatctl"
    #: seconds a connection's presence entry lives without a heartbeat (Redis broker only)
    presence_ttl: float = 20.0
    max_frame: int = 65536
    max_message: int = 8000
    max_pending: int = 1048576
    dedup_window: float = 600.0
    ping_interval: float = 20.0
    compression: bool = False
    log_level: str = "info"
    log_format: str = "text"
    certfile: Path | None = None
    keyfile: Path | None = None
    allowed_origins: tuple[str, ...] = ()
    # limit defaults come from the settings the server uses, so they are written once
    rate_limit: float = _RATES.conn_rate
    rate_burst: float = _RATES.conn_burst
    user_rate_limit: float = _RATES.user_rate
    user_rate_burst: float = _RATES.user_burst
    max_connections: int = _CONNS.max_connections
    max_user_connections: int = _CONNS.max_user_connections
    max_rooms: int = _CONNS.max_rooms
    max_user_rooms: int = _CONNS.max_user_rooms
    handshake_timeout: float = 10.0
    drain_timeout: float = 10.0
    #: replicas that must have each message before it is acked (Redis WAIT); 0 = none
    redis_wait_replicas: int = 0
    #: server processes sharing the port (0 = one per core); more than 1 needs Redis
    workers: int = 1
    #: with workers: worker K also answers /healthz and /metrics alone on this port + K - 1
    worker_status_port: int | None = None


def build_verifier(opts: ServeOptions) -> Verifier:
    if opts.public_key is not None:
        verifier = Verifier.public_key(opts.public_key, issuer=opts.issuer, audience=opts.audience)
        log.info(
            "verifying %s tokens with public key %s", "/".join(verifier.algorithms), opts.public_key
        )
        return verifier
    source = resolve_secret(opts.secret_file, create=True)
    assert source is not None
    if source.created:
        log.warning(
            "created a new token secret in %s (mode 0600); "
            "'chatctl token create --user NAME' uses it",
            source.origin,
        )
    else:
        log.info("verifying HS256 tokens with the secret from %s", source.origin)
    return Verifier.hmac(source.secret, issuer=opts.issuer, audience=opts.audience)


#: URL schemes of the brokers that several processes can share
SHARED_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def run_serve(opts: ServeOptions) -> None:
    setup_logging(opts.log_level, opts.log_format)
    if opts.keyfile is not None and opts.certfile is None:
        raise UsageError("--keyfile needs --certfile")
    if opts.workers == 1:
        verifier = build_verifier(opts)
        run_event_loop(_serve(build_server(opts, verifier)))
        return
    from chatctl.server.workers import Supervisor, cpu_count

    scheme = (opts.redis_url or "").partition(":")[0].lower()
    if scheme not in SHARED_SCHEMES:
        raise UsageError(
            "--workers needs --redis-url (or CHATCTL_REDIS_URL): "
            "worker processes share rooms only through Redis"
        )
    verifier = build_verifier(opts)  # once: a secret is created before the workers start

    def worker(number: int, announce: Callable[[], None]) -> None:
        server = build_server(opts, verifier, reuse_port=True)
        status_port = None
        if opts.worker_status_port:
            status_port = opts.worker_status_port + number - 1
        run_event_loop(_serve(server, announce=announce, status_port=status_port))

    status = Supervisor(opts.workers or cpu_count(), worker).run()
    if status:
        sys.exit(status)  # each failing worker said why on stderr already


def build_server(opts: ServeOptions, verifier: Verifier, *, reuse_port: bool = False) -> ChatServer:
    """The server (and its broker) ``opts`` describe; nothing connects before ``start()``."""
    broker_options: dict[str, object] = {
        "history_size": opts.history,
        "dedup_window": opts.dedup_window,
    }
    if opts.redis_url:
        broker_options["prefix"] = opts.redis_prefix
        broker_options["presence_ttl"] = opts.presence_ttl
        if opts.redis_wait_replicas:
            broker_options["wait_replicas"] = opts.redis_wait_replicas
    broker = create_broker(opts.redis_url, **broker_options)
    settings = ServerSettings(
        host=opts.host,
        port=opts.port,
        history_size=opts.history,
        welcome_history=min(opts.welcome_history, opts.history),
        max_frame_bytes=opts.max_frame,
        max_message_chars=opts.max_message,
        max_pending_bytes=opts.max_pending,
        ping_interval=opts.ping_interval or None,
        ping_timeout=opts.ping_interval or None,
        compression=opts.compression,
        shutdown_timeout=opts.drain_timeout,
        handshake_timeout=opts.handshake_timeout,
        certfile=opts.certfile,
        keyfile=opts.keyfile,
        allowed_origins=opts.allowed_origins,
        rates=RateSettings(
            conn_rate=opts.rate_limit,
            conn_burst=opts.rate_burst,
            user_rate=opts.user_rate_limit,
            user_burst=opts.user_rate_burst,
        ),
        limits=ConnectionSettings(
            max_connections=opts.max_connections,
            max_user_connections=opts.max_user_connections,
            max_rooms=opts.max_rooms,
            max_user_rooms=opts.max_user_rooms,
        ),
        reuse_port=reuse_port,
    )
    return ChatServer(settings, verifier, broker)


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (``pip install chatctl[fast]``), else on
    asyncio's own loop; ``CHATCTL_LOOP=asyncio`` forces the latter. Fan-out is dominated by
    one ``transport.write`` per delivery, which uvloop does in C (docs/performance.md)."""
    if os.environ.get("CHATCTL_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            log.info("event loop: uvloop")
            uvloop.run(main)
            return
    asyncio.run(main)


async def _serve(
    server: ChatServer,
    *,
    announce: Callable[[], None] | None = None,
    status_port: int | None = None,
) -> None:
    """Start ``server``, serve until a signal; ``announce()`` once listening (a worker tells
    its supervisor), and with ``status_port`` also answer /healthz and /metrics there."""
    s = server.settings
    port = s.port
    try:
        await server.start()
        status = None
        if status_port is not None:
            port = status_port
            status = await serve_status(server, status_port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {s.host}:{port}: {exc.strerror or exc}") from None
    # Everything imported and built so far lives as long as the process: move it out of the
    # collector's reach, so full collections scan only what connections and messages added
    # (a third fewer objects at 1,000 connections; see docs/performance.md, bench/gc_probe.py).
    gc.freeze()
    kind = type(server.broker).__name__.removesuffix("Broker").lower()
    log.info(
        "listening on %s://%s:%d/ws/{room} (broker: %s, node %s)",
        server.scheme,
        s.host,
        server.port,
        kind,
        server.node_id,
    )
    if status is not None:
        log.info("/healthz and /metrics of this worker alone on port %d", status_port)
    if announce is not None:
        announce()
    try:
        await server.serve_until_signal()
    finally:
        if status is not None:
            status.close()
            await status.wait_closed()


async def serve_status(server: ChatServer, port: int) -> Server:
    """Answer ``/healthz`` and ``/metrics`` of ``server`` alone on ``port`` (same host)."""
    from chatctl.server.http import plain_response, route_http

    def answer(conn: ServerConnection, request: Request) -> Response:
        response = route_http(server, request)
        if response is None:
            return plain_response(HTTPStatus.NOT_FOUND, "only /healthz and /metrics here\n")
        return response

    async def refuse(conn: ServerConnection) -> None:  # never reached: every path answered
        await conn.close()

    return await serve(refuse, server.settings.host, port, process_request=answer)
