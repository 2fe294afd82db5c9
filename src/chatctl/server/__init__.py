"""The chatctl server: handshake checks, the local fan-out hub, sessions, and the app."""

from __future__ import annotations

from chatctl.server.app import ChatServer, ServerSettings

__all__ = ["ChatServer", "ServerSettings"]
