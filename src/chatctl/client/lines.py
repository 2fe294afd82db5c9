"""Read stdin line by line for ``chatctl send`` without blocking the event loop.

A daemon thread reads the file descriptor (a pipe, a tty, a regular file or a socket: all
work, unlike ``loop.connect_read_pipe``), splits complete lines and hands them to the loop in
batches. A line longer than 64 KiB is dropped and reported as ``None``, never split.
The buffer is bounded: when ``max_buffered`` bytes wait unsent the thread stops
reading, so ``yes | chatctl send`` runs in constant memory. Each complete line is handed
over as soon as it is read, so ``tail -f log | chatctl send ops`` sends lines as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import deque
from collections.abc import Sequence

#: Longest accepted line in bytes; a longer one is an error, never split silently.
MAX_LINE_BYTES = 64 * 1024
READ_SIZE = 64 * 1024


class LineReader:
    """``await reader.batch()`` -> the next decoded lines (without newline), ``[]`` at EOF."""

    def __init__(self, fd: int, *, max_buffered: int = 1 << 20) -> None:
        self.fd = fd
        self.max_buffered = max_buffered
        self._lines: deque[str | None] = deque()
        self._bytes = 0
        self._eof = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.lines_read = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="stdin-reader", daemon=True)
        self._thread.start()

    def _notify(self) -> None:
        assert self._loop is not None and self._wakeup is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody reads any more
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def _run(self) -> None:
        partial = b""
        skipping = False  # inside a line over MAX_LINE_BYTES: dropped up to its newline
        try:
            while True:
                with self._cond:
                    while self._bytes >= self.max_buffered:
                        self._cond.wait()
                chunk = os.read(self.fd, READ_SIZE)
                if not chunk:
                    break
                if skipping:
                    end = chunk.find(b"\n")
                    if end < 0:
                        continue
                    self._push([None])
                    skipping, chunk = False, chunk[end + 1 :]
                *complete, partial = (partial + chunk).split(b"\n")
                if complete:
                    self._push(complete)
                if len(partial) > MAX_LINE_BYTES:
                    skipping, partial = True, b""
            if skipping:
                self._push([None])
            elif partial:
                self._push([partial])
        except BaseException as exc:
            self._error = exc
        finally:
            with self._cond:
                self._eof = True
            self._notify()

    def _push(self, raw: Sequence[bytes | None]) -> None:
        lines = [
            None
            if b is None or len(b) > MAX_LINE_BYTES
            else b.removesuffix(b"\r").decode("utf-8", "replace")
            for b in raw
        ]
        with self._cond:
            self._lines.extend(lines)
            self._bytes += sum(len(b) for b in raw if b is not None)
            self.lines_read += len(lines)
        self._notify()

    async def batch(self, limit: int = 1000) -> list[str | None]:
        """Up to ``limit`` lines, waiting for at least one; ``[]`` means end of input.
        A line longer than :data:`MAX_LINE_BYTES` comes as ``None`` (it is never split)."""
        assert self._wakeup is not None
        while True:
            with self._cond:
                if self._lines:
                    n = min(limit, len(self._lines))
                    out = [self._lines.popleft() for _ in range(n)]
                    self._bytes -= sum(len(line) for line in out if line is not None)
                    if self._bytes < 0 or not self._lines:
                        self._bytes = 0
                    self._cond.notify()
                    return out
                if self._eof:
                    if self._error is not None:
                        raise self._error
                    return []
                self._wakeup.clear()
            await self._wakeup.wait()
