"""``chatctl send ROOM [TEXT...]``: deliver messages and exit 0 only when every one was acked.

Pipelined: up to ``window`` messages are in flight (sent, not acked) at once, so a stream of
lines never waits one round trip per line. Every message carries a client id; when the
connection drops, the client reconnects and re-sends the unacked ones with the same ids, and
the server's de-duplication makes sure none is stored twice.

Imports neither rich, prompt-toolkit, redis nor jwt (unless a token is minted locally).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chatctl.client.core import Outbox, Pacer, Pending, RoomClient, close_reason, parse_frame
from chatctl.client.lines import MAX_LINE_BYTES, LineReader
from chatctl.client.settings import ClientSettings
from chatctl.errors import ConnectError, DeliveryTimeout, MessageRejected, UsageError
from chatctl.protocol import MessageKind

#: Rejections printed one per line before only the summary is given.
MAX_REPORTED = 10


@dataclass(frozen=True)
class SendOptions:
    room: str
    #: the messages to send, or None to read one message per stdin line
    texts: list[str] | None
    kind: MessageKind = "text"
    timeout: float = 30.0
    json: bool = False
    window: int = 1000


class _Dropped(Exception):
    """The connection ended before every message was acked."""


class Sender:
    def __init__(
        self,
        settings: ClientSettings,
        opts: SendOptions,
        *,
        stdin_fd: int = 0,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.settings = settings
        self.opts = opts
        self.stdin_fd = stdin_fd
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.outbox = Outbox()
        self.reader: LineReader | None = None
        self.texts: list[str] = list(opts.texts or [])
        self.eof = False
        self.line_no = 0
        self.overlong = 0
        self.progress = time.monotonic()
        self.window_open = asyncio.Event()
        self.done = asyncio.Event()
        self.ws: ClientConnection | None = None
        self.pacer: Pacer | None = None

    def note(self, text: str) -> None:
        print(f"chatctl: {text}", file=self.stderr, flush=True)

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        opts = self.opts
        if opts.texts is None:
            self.reader = LineReader(self.stdin_fd)
            self.reader.start()
        # a sender is not a room member: no "joined"/"left" for everyone at every run
        client = RoomClient(self.settings, opts.room, history=0, presence=False)
        deadline = time.monotonic() + opts.timeout if opts.timeout else None
        while True:
            try:
                ws, welcome = await client.connect(deadline=deadline)
            except ConnectError as exc:
                left = len(self.outbox) + len(self.texts)
                suffix = f" ({plural(left, 'message')} not acked)" if left else ""
                raise ConnectError(f"{exc}{suffix}") from None
            if client.connections > 1:
                self.note(f"reconnected; re-sending {plural(len(self.outbox), 'unacked message')}")
            self.progress = time.monotonic()
            if self.pacer is None:
                self.pacer = Pacer.from_welcome(welcome)
            try:
                await self._session(ws)
                await ws.close()
                break
            except _Dropped as exc:
                self.note(f"{exc}; reconnecting")
            deadline = time.monotonic() + opts.timeout if opts.timeout else None
        self._finish()

    def _finish(self) -> None:
        rejected = self.outbox.rejected
        if rejected:
            p, reason = rejected[0]
            total = self.outbox.seq + self.overlong
            raise MessageRejected(
                f"{len(rejected)} of {total} messages not sent; first: {self._where(p)}{reason}"
            )

    def _where(self, p: Pending) -> str:
        return f"line {p.origin}: " if self.reader is not None else ""

    # ------------------------------------------------------------------ one connection

    async def _session(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._check_done()
        sender = asyncio.create_task(self._send_loop(ws, list(self.outbox.unacked())))
        receiver = asyncio.create_task(self._recv_loop(ws))
        done = asyncio.create_task(self.done.wait())
        tasks: set[asyncio.Task[None] | asyncio.Task[bool]] = {sender, receiver, done}
        timeout = self.opts.timeout
        try:
            while True:
                finished, _ = await asyncio.wait(
                    tasks,
                    timeout=min(timeout, 1.0) if timeout else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if self.done.is_set():
                    return
                for task in finished:
                    tasks.discard(task)
                    exc = task.exception()
                    if isinstance(exc, ConnectionClosed):
                        raise _Dropped(close_reason(exc))
                    if exc is not None:
                        raise exc
                    if task is receiver:
                        raise _Dropped(f"connection closed ({ws.close_code})")
                if timeout and len(self.outbox) and time.monotonic() - self.progress > timeout:
                    raise DeliveryTimeout(
                        f"timed out: {len(self.outbox)} of {self.outbox.seq} messages "
                        f"not acked after {timeout:g} s"
                    )
        finally:
            self.ws = None
            for task in (sender, receiver, done):
                task.cancel()
            await asyncio.gather(sender, receiver, done, return_exceptions=True)

    def _check_done(self) -> None:
        if self.eof and not self.outbox.pending:
            self.done.set()

    async def _next_texts(self, limit: int) -> list[str | None]:
        if self.reader is None:
            texts, self.texts = self.texts[:limit], self.texts[limit:]
            return list(texts)
        try:
            return await self.reader.batch(limit)
        except OSError as exc:
            raise UsageError(f"cannot read stdin: {exc.strerror or exc}") from None

    async def _send_loop(self, ws: ClientConnection, resend: Iterable[Pending]) -> None:
        pacer = self.pacer
        for p in resend:
            if pacer is not None:
                await pacer.wait()
            await ws.send(p.frame)
        window = self.opts.window
        outbox = self.outbox
        while not self.eof:
            while len(outbox) >= window:
                self.window_open.clear()
                await self.window_open.wait()
            texts = await self._next_texts(window - len(outbox))
            if not texts:
                self.eof = True
                self._check_done()
                return
            batch: list[Pending] = []
            for text in texts:
                self.line_no += 1
                if text is None:
                    self.overlong += 1
                    self._reject(
                        Pending("", "", origin=self.line_no),
                        f"longer than {MAX_LINE_BYTES} bytes (lines are never split)",
                    )
                    continue
                if not text.strip():
                    continue
                if not outbox.pending:
                    self.progress = time.monotonic()
                batch.append(outbox.add(text, self.opts.kind, self.line_no))
            for p in batch:  # all are in the outbox first: a drop mid-batch re-sends the rest
                if pacer is not None:
                    await pacer.wait()
                await ws.send(p.frame)

    async def _recv_loop(self, ws: ClientConnection) -> None:
        outbox, out, json_out = self.outbox, self.stdout, self.opts.json
        async for data in ws:
            if isinstance(data, str) and data.startswith('{"type":"message"'):
                continue  # our own messages (and others') echoed by the room: not needed
            frame = parse_frame(data)
            ftype = frame.get("type")
            if ftype == "ack":
                if outbox.on_ack(frame) is not None:
                    self.progress = time.monotonic()
                    if json_out:
                        out.write(data if isinstance(data, str) else data.decode())
                        out.write("\n")
                        out.flush()
                    self.window_open.set()
                    self._check_done()
            elif ftype == "error":
                self._on_error(frame)

    def _on_error(self, frame: dict[str, object]) -> None:
        p, delay = self.outbox.on_error(frame)
        if p is None:
            self.note(f"server error: {frame.get('reason') or frame.get('code')}")
            return
        self.progress = time.monotonic()
        if delay is not None:
            asyncio.get_running_loop().call_later(delay, self._resend, p)
            return
        self._reject(p, None)
        self.window_open.set()
        self._check_done()

    def _reject(self, p: Pending, reason: str | None) -> None:
        """Report a message the server refused (``reason`` None: already recorded)."""
        if reason is not None:
            self.outbox.rejected.append((p, reason))
        if len(self.outbox.rejected) <= MAX_REPORTED:
            where = f"line {p.origin}" if self.reader is not None else "message"
            self.note(f"{where} not sent: {self.outbox.rejected[-1][1]}")

    def _resend(self, p: Pending) -> None:
        ws = self.ws
        if ws is not None and p.client_id in self.outbox.pending:
            task = asyncio.ensure_future(ws.send(p.frame))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())


def run_send(settings: ClientSettings, opts: SendOptions) -> None:
    """Run ``chatctl send`` to completion; errors carry their exit status."""
    if opts.texts is not None and not any(t.strip() for t in opts.texts):
        raise UsageError("the message is empty")
    asyncio.run(
        Sender(settings, opts, stdin_fd=sys.stdin.fileno() if opts.texts is None else 0).run()
    )


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (OSError, ValueError):
        return False
