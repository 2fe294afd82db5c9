"""What a :class:`~chatctl.server.ChatServer` is configured with.

Kept apart from the server itself (and importing neither websockets nor the broker) so
that ``chatctl serve --help`` and the CLI's defaults read these values without loading the
server: each serve default is written here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from chatctl.protocol import (
    DEFAULT_HISTORY,
    DEFAULT_WELCOME_HISTORY,
    MAX_FRAME_BYTES,
    MAX_MESSAGE_CHARS,
)
from chatctl.server.limits import ConnectionSettings, RateSettings


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
    shutdown_timeout: float = 10.0
    #: seconds a client has for the TCP, TLS and WebSocket opening handshakes together
    handshake_timeout: float = 10.0
    #: serve wss:// with this PEM certificate chain (and key, unless ``keyfile`` is given)
    certfile: Path | None = None
    keyfile: Path | None = None
    #: a file of revoked token ids (``jti``), one a line: refused as every revoked token is
    #: (server/revocation.py)
    revoked_tokens: Path | None = None
    #: browser origins allowed besides the server's own (see server/http.py); "*" allows all
    allowed_origins: tuple[str, ...] = ()
    rates: RateSettings = field(default_factory=RateSettings)
    limits: ConnectionSettings = field(default_factory=ConnectionSettings)
    #: direct messages (``/ws/@USER``: protocol/direct.py, server/direct.py); off: 403
    dms: bool = True
    #: bind with SO_REUSEPORT, so that ``serve --workers`` processes share the port
    reuse_port: bool = False
