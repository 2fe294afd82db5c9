"""A TCP proxy the runner controls, between clients and a node: ``delay`` each chunk,
``pause`` forwarding (bytes wait), ``cut`` every connection through it. Local, no
privileges: nothing outside the runner's own processes is touched."""

from __future__ import annotations

import asyncio
import contextlib

from chatctl.bench.chaos.clients import small_socket

#: bytes the proxy reads at once, and holds at most per direction in its buffers
CHUNK = 16384


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.delay = 0.0
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=CHUNK)
        self.port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def cut(self) -> int:
        """Close every connection through the proxy (both ends, bytes in it dropped)."""
        n = 0
        for writer in list(self._conns):
            writer.transport.abort()
            n += 1
        self._conns.clear()
        return n

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = await small_socket(self.target_port)
            up_r, up_w = await asyncio.open_connection(sock=sock, limit=CHUNK)
        except OSError:
            writer.transport.abort()
            return
        for w in (writer, up_w):  # hold little: a client that stops reading backs the node up
            w.transport.set_write_buffer_limits(high=CHUNK)
        self._conns |= {writer, up_w}
        a = asyncio.create_task(self._pipe(reader, up_w))
        b = asyncio.create_task(self._pipe(up_r, writer))
        self._tasks |= {a, b}
        await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        for w in (writer, up_w):
            w.transport.abort()
            self._conns.discard(w)
        for t in (a, b):
            t.cancel()
            self._tasks.discard(t)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(CHUNK):
                await self._open.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if writer.is_closing():
                    return
                writer.write(chunk)
                await writer.drain()

    async def close(self) -> None:
        self.resume()
        self.cut()
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


__all__ = ["Proxy"]
