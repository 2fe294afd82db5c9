"""A TCP proxy in front of a real Redis that can lose a reply: once :meth:`ReplyCutter.arm`
is called, the next command containing ``marker`` (a script call: ``EVALSHA``) is forwarded,
and the reply to it is dropped and every connection through the proxy closed, so the command
has run but its client never hears so. Later connections are forwarded as usual."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class ReplyCutter:
    def __init__(self, target_port: int, marker: bytes = b"EVALSHA") -> None:
        self.target_port = target_port
        self.marker = marker
        self.port = 0
        self.cuts = 0
        self._armed = False
        #: called (once) when a reply is cut, before the connections close
        self.on_cut: Callable[[], None] | None = None
        self.cut_done = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> ReplyCutter:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop_listening(self) -> None:
        """Refuse new connections (as a stopped Redis does) until :meth:`listen_again`."""
        if self._server is not None:
            self._server.close()

    async def listen_again(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    def arm(self) -> None:
        """Lose the next reply (of any connection) and close every connection."""
        self.cut_done.clear()
        self._armed = True

    def _cut(self) -> None:
        self._armed = False
        self.cuts += 1
        if self.on_cut is not None:
            self.on_cut()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        self.cut_done.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_w}
        marked: list[bool] = [False]  # this connection sent the marked command while armed
        a = asyncio.create_task(self._pipe(reader, up_w, marked, reply=False))
        b = asyncio.create_task(self._pipe(up_r, writer, marked, reply=True))
        self._tasks |= {a, b}
        await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
        for w in (writer, up_w):
            w.transport.abort()
            self._writers.discard(w)
        for t in (a, b):
            t.cancel()
            self._tasks.discard(t)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        marked: list[bool],
        *,
        reply: bool,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if not reply and self._armed and self.marker in chunk:
                    marked[0] = True
                elif reply and self._armed and marked[0]:
                    self._cut()
                    return
                if writer.is_closing():
                    return
                writer.write(chunk)
                await writer.drain()

    async def close(self) -> None:
        self._armed = False
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
