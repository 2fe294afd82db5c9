"""``chatctl serve``: turn flags into a running :class:`~chatctl.server.ChatServer`."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chatctl.broker.base import DEFAULT_HISTORY_TTL
from chatctl.config import data_dir, resolve_secret
from chatctl.errors import ConfigError, UsageError
from chatctl.log import LogFormat, LogLevel, setup_logging
from chatctl.protocol import DEFAULT_DEDUP_WINDOW
from chatctl.server.limits import ConnectionSettings, RateSettings
from chatctl.server.settings import ServerSettings

if TYPE_CHECKING:
    from chatctl.server import ChatServer
    from chatctl.tokens.verify import Verifier

log = logging.getLogger("chatctl.server")
_SERVER = ServerSettings()
_RATES = _SERVER.rates
_CONNS = _SERVER.limits


@dataclass(frozen=True)
class ServeOptions:
    """What ``chatctl serve`` was asked for. Each default is read from the setting it feeds
    (:class:`ServerSettings`, its rates and limits, the protocol's constants), so it is
    written once; the CLI's flags show these (chatctl/cli/serve.py)."""

    host: str = _SERVER.host
    port: int = _SERVER.port
    history: int = _SERVER.history_size
    welcome_history: int = _SERVER.welcome_history
    secret_file: Path | None = None
    public_key: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    #: where the SQLite broker keeps its file (default: config.data_dir())
    data_dir: Path | None = None
    #: keep rooms in memory only (the memory broker)
    memory: bool = False
    #: SQLite synchronous=FULL: each commit synced to disk
    fsync: bool = False
    #: seconds; 0 keeps messages and rooms forever
    history_ttl: float = DEFAULT_HISTORY_TTL
    redis_url: str | None = None
    #: the Redis broker's key prefix and presence lifetime (seconds without a heartbeat); its
    #: constructor has the same defaults, not read from there: that would import redis
    redis_prefix: str = "chatctl"
    presence_ttl: float = 20.0
    max_frame: int = _SERVER.max_frame_bytes
    max_message: int = _SERVER.max_message_chars
    max_pending: int = _SERVER.max_pending_bytes
    dedup_window: float = DEFAULT_DEDUP_WINDOW
    #: 0 turns keepalive pings off (the server's ``None``)
    ping_interval: float = _SERVER.ping_interval or 0.0
    compression: bool = _SERVER.compression
    log_level: LogLevel = "info"
    log_format: LogFormat = "text"
    certfile: Path | None = None
    keyfile: Path | None = None
    allowed_origins: tuple[str, ...] = ()
    rate_limit: float = _RATES.conn_rate
    rate_burst: float = _RATES.conn_burst
    user_rate_limit: float = _RATES.user_rate
    user_rate_burst: float = _RATES.user_burst
    max_connections: int = _CONNS.max_connections
    max_user_connections: int = _CONNS.max_user_connections
    max_rooms: int = _CONNS.max_rooms
    max_user_rooms: int = _CONNS.max_user_rooms
    handshake_timeout: float = _SERVER.handshake_timeout
    #: the server's shutdown_timeout: SIGTERM drain or shutdown, then connections are aborted
    drain_timeout: float = _SERVER.shutdown_timeout
    #: replicas that must have each message before it is acked (Redis WAIT); 0 = none
    redis_wait_replicas: int = 0
    #: server processes sharing the port (0 = one per core); more than 1 needs Redis
    workers: int = 1
    #: with workers: worker K also answers /healthz and /metrics alone on this port + K - 1
    worker_status_port: int | None = None


def build_verifier(opts: ServeOptions, *, reload: bool = False) -> Verifier:
    """The token verifier ``opts`` name: the public key, else the HS256 secret (created on
    first start). ``reload`` (SIGHUP) reads the same source again, silently: the server
    logs one line for the reload."""
    from chatctl.tokens.verify import Verifier

    if opts.public_key is not None:
        verifier = Verifier.public_key(opts.public_key, issuer=opts.issuer, audience=opts.audience)
        if not reload:
            log.info(
                "verifying %s tokens with public key %s",
                "/".join(verifier.algorithms),
                opts.public_key,
            )
        return verifier
    source = resolve_secret(opts.secret_file, create=not reload)
    if source is None:  # the default secret file was removed since the start
        raise ConfigError("no token secret: the secret file is gone")
    if source.created:
        log.warning(
            "created a new token secret in %s (mode 0600); "
            "'chatctl token create --user NAME' uses it",
            source.origin,
        )
    elif not reload:
        log.info("verifying HS256 tokens with the secret from %s", source.origin)
    return Verifier.hmac(
        source.secret, issuer=opts.issuer, audience=opts.audience, origin=source.origin
    )


def broker_url(opts: ServeOptions) -> str:
    """The broker the options ask for: Redis, memory, or (the default) SQLite in the data dir."""
    if opts.memory and opts.redis_url:
        raise UsageError("--memory and --redis-url exclude each other")
    if opts.redis_url:
        return opts.redis_url
    if opts.memory:
        return "memory://"
    directory = (opts.data_dir or data_dir()).expanduser().absolute()
    return f"sqlite://{quote(str(directory))}/" + ("?synchronous=full" if opts.fsync else "")


def run_serve(opts: ServeOptions) -> None:
    setup_logging(opts.log_level, opts.log_format)
    if opts.keyfile is not None and opts.certfile is None:
        raise UsageError("--keyfile needs --certfile")
    if opts.workers == 1:
        run_event_loop(_serve(build_server(opts, build_verifier(opts))))
        return
    # imported here, not at the top: the CLI reads ServeOptions' defaults for --help and
    # completion, which must not load the server, websockets, jwt or a broker
    from chatctl.broker.registry import entry_for
    from chatctl.server.workers import Supervisor, cpu_count

    if opts.redis_url is None or not entry_for(opts.redis_url).shared:
        raise UsageError(
            "--workers needs --redis-url (or CHATCTL_REDIS_URL): "
            "worker processes share rooms only through Redis"
        )
    verifier = build_verifier(opts)  # once: a new secret is created before the workers fork

    def worker(number: int, announce: Callable[[], None]) -> None:
        server = build_server(opts, verifier, reuse_port=True)
        status_port = None
        if opts.worker_status_port:
            status_port = opts.worker_status_port + number - 1
        run_event_loop(_serve(server, announce=announce, status_port=status_port))

    status = Supervisor(opts.workers or cpu_count(), worker, address=(opts.host, opts.port)).run()
    if status:
        sys.exit(status)  # each failing worker said why on stderr already


def build_server(opts: ServeOptions, verifier: Verifier, *, reuse_port: bool = False) -> ChatServer:
    """The server (and its broker) ``opts`` describe; nothing connects before ``start()``."""
    from chatctl.broker import create_broker
    from chatctl.server import ChatServer

    # each broker takes the options that apply to it (chatctl.broker.registry)
    broker = create_broker(
        broker_url(opts),
        history_size=opts.history,
        dedup_window=opts.dedup_window,
        history_ttl=opts.history_ttl,
        prefix=opts.redis_prefix,
        presence_ttl=opts.presence_ttl,
        wait_replicas=opts.redis_wait_replicas,
    )
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
    return ChatServer(
        settings, verifier, broker, load_verifier=lambda: build_verifier(opts, reload=True)
    )


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
            from chatctl.server.workers import serve_status

            port = status_port
            status = await serve_status(server, status_port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {s.host}:{port}: {exc.strerror or exc}") from None
    # Everything imported and built so far lives as long as the process: move it out of the
    # collector's reach, so full collections scan only what connections and messages added
    # (a third fewer objects at 1,000 connections; see docs/performance.md, bench/gc_probe.py).
    gc.freeze()
    kind = type(server.broker).__name__.removesuffix("Broker").lower()
    path = getattr(server.broker, "path", None)
    if path is not None:
        log.info("rooms are kept in %s (--data-dir to move it, --memory for none)", path)
    elif kind == "memory":
        log.info("rooms are kept in memory only: history and ids are lost on exit")
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
