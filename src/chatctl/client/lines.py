"""Read stdin line by line for ``chatctl send`` without blocking the event loop.

A daemon thread reads the file descriptor (a pipe, a tty, a regular file or a socket: all
work, unlike ``loop.connect_read_pipe``), splits complete lines and hands them to the loop in
batches. A line that cannot be sent comes as a :class:`BadLine` saying why, in its place:
longer than 64 KiB (never split), or not valid UTF-8 (unless ``errors="replace"``: then
each invalid byte becomes U+FFFD). A byte-order mark at the start of the input is dropped.
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
from dataclasses import dataclass
from typing import Literal

#: Longest accepted line in bytes; a longer one is an error, never split silently.
MAX_LINE_BYTES = 64 * 1024
READ_SIZE = 64 * 1024
BOM = b"\xef\xbb\xbf"

#: what to do with bytes that are not UTF-8: refuse the line, or replace them with U+FFFD
EncodingErrors = Literal["strict", "replace"]
OVERLONG = f"longer than {MAX_LINE_BYTES} bytes (lines are never split)"


@dataclass(frozen=True)
class BadLine:
    """A line of input that cannot be sent, and why (one line, no input echoed)."""

    reason: str


def decode(raw: bytes, errors: EncodingErrors) -> str | BadLine:
    """One line's bytes (without newline) as text, or why it cannot be sent."""
    if len(raw) > MAX_LINE_BYTES:
        return BadLine(OVERLONG)
    raw = raw.removesuffix(b"\r")
    try:
        return raw.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        return BadLine(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}); "
            "--encoding-errors replace sends such lines with U+FFFD"
        )


class LineReader:
    """``await reader.batch()`` -> the next decoded lines (without newline), ``[]`` at EOF."""

    def __init__(
        self, fd: int, *, max_buffered: int = 1 << 20, errors: EncodingErrors = "strict"
    ) -> None:
        self.fd = fd
        self.max_buffered = max_buffered
        self.errors: EncodingErrors = errors
        self._first = True  # the next line pushed is the input's first (may start with a BOM)
        self._lines: deque[str | BadLine] = deque()
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
        if self._first:
            self._first = False
            if raw[0] is not None:
                raw = [raw[0].removeprefix(BOM), *raw[1:]]
        lines = [BadLine(OVERLONG) if b is None else decode(b, self.errors) for b in raw]
        with self._cond:
            self._lines.extend(lines)
            self._bytes += sum(len(b) for b in raw if b is not None)
            self.lines_read += len(lines)
        self._notify()

    async def batch(self, limit: int = 1000) -> list[str | BadLine]:
        """Up to ``limit`` lines, waiting for at least one; ``[]`` means end of input.
        A line that cannot be sent comes as a :class:`BadLine` (one over
        :data:`MAX_LINE_BYTES` is never split)."""
        assert self._wakeup is not None
        while True:
            with self._cond:
                if self._lines:
                    n = min(limit, len(self._lines))
                    out = [self._lines.popleft() for _ in range(n)]
                    self._bytes -= sum(len(line) for line in out if isinstance(line, str))
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
