"""Read stdin line by line (or block by block) for ``chatctl send`` without blocking the
event loop.

A daemon thread reads the file descriptor (a pipe, a tty, a regular file or a socket: all
work, unlike ``loop.connect_read_pipe``), splits complete messages and hands them to the loop
in batches. What one message is, is :data:`Split`: a line (the default), a NUL-terminated
record (``-0``), a paragraph (lines up to a blank line, ``--paragraphs``) or the whole input
(``--whole``); the newlines at the end of a block are not part of it. A message that cannot
be sent comes as a :class:`BadLine` saying why, in its place: longer than 64 KiB (never
split), or not valid UTF-8 (unless ``errors="replace"``: then each invalid byte becomes
U+FFFD). A byte-order mark at the start of the input is dropped.
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
#: what one message of stdin is: a line, a NUL-terminated record, a paragraph, all of it
Split = Literal["line", "null", "paragraph", "whole"]
OVERLONG = f"longer than {MAX_LINE_BYTES} bytes (lines are never split)"
OVERLONG_BLOCK = f"longer than {MAX_LINE_BYTES} bytes (messages are never split)"


@dataclass(frozen=True)
class BadLine:
    """A line of input that cannot be sent, and why (one line, no input echoed)."""

    reason: str


def decode(raw: bytes, errors: EncodingErrors, *, block: bool = False) -> str | BadLine:
    """One line's bytes (without newline) as text, or why it cannot be sent; a ``block``
    (not a line) loses the newlines at its end instead."""
    if len(raw) > MAX_LINE_BYTES:
        return BadLine(OVERLONG_BLOCK if block else OVERLONG)
    raw = raw.rstrip(b"\r\n") if block else raw.removesuffix(b"\r")
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
        self,
        fd: int,
        *,
        max_buffered: int = 1 << 20,
        errors: EncodingErrors = "strict",
        split: Split = "line",
    ) -> None:
        self.fd = fd
        self.split: Split = split
        #: the paragraph being read (``split="paragraph"``), and whether a line of it was over
        self._block: list[bytes] = []
        self._block_bad = False
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
        sep = b"\0" if self.split == "null" else b"\n"
        whole = self.split == "whole"
        try:
            while True:
                with self._cond:
                    while self._bytes >= self.max_buffered:
                        self._cond.wait()
                chunk = os.read(self.fd, READ_SIZE)
                if not chunk:
                    break
                if whole:  # one message at the end: only its size is checked meanwhile
                    partial = b"" if skipping else partial + chunk
                    skipping = skipping or len(partial) > MAX_LINE_BYTES
                    continue
                if skipping:
                    end = chunk.find(sep)
                    if end < 0:
                        continue
                    self._push([None])
                    skipping, chunk = False, chunk[end + 1 :]
                *complete, partial = (partial + chunk).split(sep)
                if complete:
                    self._push(complete)
                if len(partial) > MAX_LINE_BYTES:
                    skipping, partial = True, b""
            if skipping:
                self._push([None])
            elif partial:
                self._push([partial])
            if self._block or self._block_bad:  # the last paragraph
                self._push([b""])
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
        block = self.split != "line"
        if self.split == "paragraph":
            raw = self._paragraphs(raw)
            if not raw:
                return
        lines = [
            BadLine(OVERLONG_BLOCK if block else OVERLONG)
            if b is None
            else decode(b, self.errors, block=block)
            for b in raw
        ]
        with self._cond:
            self._lines.extend(lines)
            self._bytes += sum(len(b) for b in raw if b is not None)
            self.lines_read += len(lines)
        self._notify()

    def _paragraphs(self, raw: Sequence[bytes | None]) -> list[bytes | None]:
        """Lines -> the paragraphs they end (a blank line ends one; None: one over the
        limit). The paragraph still open stays in ``_block``."""
        out: list[bytes | None] = []
        for line in raw:
            if line is None:
                self._block_bad = True
            elif line.strip():
                self._block.append(line.removesuffix(b"\r"))
            elif self._block or self._block_bad:
                text = b"\n".join(self._block)
                out.append(None if self._block_bad or len(text) > MAX_LINE_BYTES else text)
                self._block, self._block_bad = [], False
        return out

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
