"""Where the API meets the server: a connection handed over by server/wire.py becomes an
:class:`~chatctl.server.httpapi.exchange.HttpConnection`; the server closes them all when it
stops."""

from __future__ import annotations

import asyncio

from chatctl.server.context import SessionContext
from chatctl.server.httpapi.answers import Reply
from chatctl.server.httpapi.exchange import Exchange, HttpConnection
from chatctl.server.httpapi.routes import dispatch


class HttpFront:
    """The API of one server: its open HTTP connections and what they share."""

    def __init__(self, ctx: SessionContext) -> None:
        self.ctx = ctx
        self.connections: set[HttpConnection] = set()
        self.closing = False

    def take(self, transport: asyncio.Transport, data: bytes) -> None:
        """Serve ``transport`` from now on; ``data`` is what it sent so far."""
        conn = HttpConnection(
            self._handle,
            server_name=self.ctx.server_name,
            max_pending=self.ctx.settings.max_pending_bytes,
            count=self.ctx.metrics.counters.http_request,
            forget=self.connections.discard,
        )
        self.connections.add(conn)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if data:
            conn.data_received(data)
        if self.closing:
            conn.close()

    async def _handle(self, exchange: Exchange) -> Reply | None:
        return await dispatch(self.ctx, exchange)

    def close(self) -> None:
        """Close every connection (streams end: their readers reconnect elsewhere)."""
        self.closing = True
        for conn in list(self.connections):
            conn.close()
