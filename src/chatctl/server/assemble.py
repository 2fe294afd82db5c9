"""``chatctl serve``: turn its options into a running :class:`~chatctl.server.ChatServer`."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chatctl.config import data_dir, resolve_secret
from chatctl.errors import ConfigError, UsageError
from chatctl.log import setup_logging
from chatctl.server.options import ServeOptions, server_settings

if TYPE_CHECKING:
    from chatctl.server import ChatServer
    from chatctl.tokens.verify import Verifier

__all__ = ["ServeOptions", "broker_url", "build_server", "build_verifier", "run_serve"]

log = logging.getLogger("chatctl.server")


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
    """The broker the options ask for: ``--broker``, or one of its aliases (``--redis-url``,
    ``--memory``, ``--data-dir``), else SQLite in the data directory. Two that choose
    different brokers are a :class:`UsageError`."""
    chosen = [
        (flag, url)
        for flag, url in (
            ("--broker", opts.broker),
            ("--redis-url", opts.redis_url),
            ("--memory", "memory:" if opts.memory else None),
        )
        if url
    ]
    if len(chosen) > 1:
        (first, _), (second, _) = chosen[:2]
        raise UsageError(f"{first} and {second} exclude each other (both choose the broker)")
    if not chosen:
        directory = (opts.data_dir or data_dir()).expanduser().absolute()
        return f"sqlite://{quote(str(directory))}/"
    flag, url = chosen[0]
    if opts.data_dir is not None:
        raise UsageError(f"--data-dir and {flag} exclude each other (both say where rooms are)")
    return url


def run_serve(opts: ServeOptions) -> None:
    # the registry imports no broker; the choice is checked before anything is logged
    from chatctl.broker.registry import BROKERS, entry_for

    url = broker_url(opts)
    entry = entry_for(url)
    setup_logging(opts.log_level, opts.log_format)
    raise_fd_limit()
    if opts.keyfile is not None and opts.certfile is None:
        raise UsageError("--keyfile needs --certfile")
    if opts.workers == 1:
        run_event_loop(_serve(build_server(opts, build_verifier(opts)), url))
        return
    # imported here, not at the top: the CLI reads ServeOptions' defaults for --help and
    # completion, which must not load the server, websockets, jwt or a broker
    from chatctl.server.workers import Supervisor, cpu_count

    if not entry.shared:
        shared = ", ".join(f"{e.schemes[0]}://" for e in BROKERS if e.shared)
        raise UsageError(
            f"--workers needs --redis-url or a --broker that processes share ({shared}), "
            f"not {entry.name}: worker processes share rooms only through it"
        )
    verifier = build_verifier(opts)  # once: a new secret is created before the workers fork

    def worker(number: int, announce: Callable[[], None]) -> None:
        server = build_server(opts, verifier, reuse_port=True)
        status_port = None
        if opts.worker_status_port:
            status_port = opts.worker_status_port + number - 1
        run_event_loop(_serve(server, url, announce=announce, status_port=status_port))

    status = Supervisor(opts.workers or cpu_count(), worker, address=(opts.host, opts.port)).run()
    if status:
        sys.exit(status)  # each failing worker said why on stderr already


def raise_fd_limit() -> None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard one: every connection (a WebSocket user's
    or a half-open HTTP request's) holds a descriptor, and a soft limit of 1024 (a common
    default) would refuse connections long before the server is busy (docs/deploy.md)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # e.g. a hard limit above the kernel's nr_open
        log.debug("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
    else:
        log.debug("raised the open-file limit from %d to %d", soft, hard)


def build_server(opts: ServeOptions, verifier: Verifier, *, reuse_port: bool = False) -> ChatServer:
    """The server (and its broker) ``opts`` describe; nothing connects before ``start()``."""
    from chatctl.broker.registry import create_broker, option_keywords
    from chatctl.server import ChatServer

    # each broker takes the options that apply to it (chatctl.broker.registry)
    broker = create_broker(
        broker_url(opts),
        history_size=opts.history,
        dedup_window=opts.dedup_window,
        history_ttl=opts.history_ttl,
        **option_keywords(opts.broker_options),
    )
    settings = server_settings(opts, reuse_port=reuse_port)
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
    url: str,
    *,
    announce: Callable[[], None] | None = None,
    status_port: int | None = None,
) -> None:
    """Start ``server`` (its broker chosen by ``url``), serve until a signal; ``announce()``
    once listening (a worker tells its supervisor), and with ``status_port`` also answer
    /healthz and /metrics there."""
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
    from chatctl.broker.base import KeptInFile
    from chatctl.broker.registry import entry_for

    entry = entry_for(url)
    if isinstance(server.broker, KeptInFile):
        log.info(
            "rooms are kept in %s (--data-dir to move it, --memory for none)", server.broker.path
        )
    elif not entry.persistent:
        log.info("rooms are kept in %s only: history and ids are lost on exit", entry.name)
    log.info(
        "listening on %s://%s:%d/ws/{room} (broker: %s, node %s)",
        server.scheme,
        s.host,
        server.port,
        entry.name,
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
