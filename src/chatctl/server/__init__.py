"""The chatctl server: handshake checks, the local fan-out hub, sessions, and the app.

``ServerSettings`` is importable without loading the server; ``ChatServer`` (and with it
websockets) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatctl.server.settings import ServerSettings

if TYPE_CHECKING:
    from chatctl.server.app import ChatServer

__all__ = ["ChatServer", "ServerSettings"]


def __getattr__(name: str) -> Any:
    if name == "ChatServer":
        from chatctl.server.app import ChatServer

        return ChatServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
