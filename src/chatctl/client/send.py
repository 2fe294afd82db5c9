"""``chatctl send ROOM [TEXT...]``: deliver messages and exit 0 only when every one was acked.

Pipelined: up to ``window`` messages are in flight (sent, not acked) at once, so a stream of
lines never waits one round trip per line. Every message carries a client id; when the
connection drops, the client reconnects and re-sends the unacked ones with the same ids, and
the server's de-duplication makes sure none is stored twice. Lines are stored in stdin order
through every failure (a refusal, a reconnect): the stream re-sends in the outbox's order.

Imports neither rich, prompt-toolkit, redis nor jwt (unless a token is minted locally).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from chatctl.client.core import Outbox, Pending
from chatctl.client.events import (
    Acked,
    Connected,
    Deferred,
    Disconnected,
    Rejected,
    TokenProblem,
    TokenRenewed,
)
from chatctl.client.lines import MAX_LINE_BYTES, LineReader
from chatctl.client.sanitize import one_line
from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.errors import ConnectError, DeliveryTimeout, MessageRejected, UsageError
from chatctl.protocol import ErrorFrame, MessageKind

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
        #: client id -> monotonic time by which it must be acked (``--timeout`` after it was
        #: handed to the stream), whatever errors come back meanwhile
        self.deadlines: dict[str, float] = {}
        #: the last reason a message was not stored yet, for the timeout's message
        self.last_problem: str | None = None
        self.window_open = asyncio.Event()
        self.done = asyncio.Event()
        #: what ended the send loop early (stdin unreadable), raised by :meth:`run`
        self.error: BaseException | None = None

    def note(self, text: str) -> None:
        print(f"chatctl: {text}", file=self.stderr, flush=True)

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        opts = self.opts
        if opts.texts is None:
            self.reader = LineReader(self.stdin_fd)
            self.reader.start()
        # A sender is not a room member (no "joined"/"left" for everyone at every run) and
        # connects write-only: the server sends it its acks, not the room's traffic (an
        # older server that still does: dropped unread).
        stream = RoomStream(
            self.settings,
            opts.room,
            history=0,
            presence=False,
            receive=False,
            connect_timeout=opts.timeout or None,
            skip=("message", "presence", "presence_batch"),
            outbox=self.outbox,
            wait_for_token=False,  # a token refused at a reconnect ends the run: status 3
        )
        async with stream:
            tasks = {
                asyncio.create_task(self._consume(stream)),
                asyncio.create_task(self._watch(stream)),
                asyncio.create_task(self.done.wait()),
            }
            try:
                finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    task.result()  # the first error, if any
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        self._finish()

    async def _consume(self, stream: RoomStream) -> None:
        sender: asyncio.Task[None] | None = None
        try:
            async for event in stream:
                if isinstance(event, Acked):
                    self._acked(event)
                elif isinstance(event, Deferred):
                    error = event.error
                    self.last_problem = f"{error.code}: {one_line(error.reason)}"
                elif isinstance(event, Rejected):
                    self.deadlines.pop(event.pending.client_id, None)
                    self._reject(event.pending, None)
                    self.window_open.set()
                    self._check_done()
                elif isinstance(event, ErrorFrame):
                    self.note(f"server error: {one_line(event.reason)}")
                elif isinstance(event, Connected):
                    if event.resume.reconnect:
                        n = plural(event.resending, "unacked message")
                        self.note(f"reconnected; re-sending {n}")
                    if sender is None:
                        sender = asyncio.create_task(self._send_loop(stream))
                        sender.add_done_callback(self._sender_done)
                elif isinstance(event, Disconnected):
                    self.last_problem = event.reason
                    self.note(f"{event.reason}; reconnecting")
                elif isinstance(event, TokenProblem):
                    self.note(event.reason)
                elif isinstance(event, TokenRenewed):
                    self.last_problem = None
        except ConnectError as exc:
            left = len(self.outbox) + len(self.texts)
            suffix = f" ({plural(left, 'message')} not acked)" if left else ""
            raise ConnectError(f"{exc}{suffix}") from None
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.error = task.exception()
            self.done.set()

    async def _watch(self, stream: RoomStream) -> None:
        """Raise DeliveryTimeout when a message is not acked ``--timeout`` seconds after it
        was handed to the stream: a deadline per message, which neither retries after
        ``broker_unavailable`` nor reconnects move."""
        timeout = self.opts.timeout
        if not timeout:
            await asyncio.Event().wait()  # never: only the connect deadline is off too
        while True:
            pending = self.outbox.pending
            first = next(iter(pending), None)  # the oldest: the outbox keeps send order
            deadline = self.deadlines.get(first) if first is not None else None
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise DeliveryTimeout(self._timed_out(timeout))
            await asyncio.sleep(min(0.25, deadline - now) if deadline is not None else 0.25)

    def _timed_out(self, timeout: float) -> str:
        """The timeout's one line: every message not acked (not only the ones past their
        deadline) of those read, and where reading stopped if input may be left unsent."""
        read = self.outbox.seq
        unread = ""
        if self.texts:
            unread = f"; {len(self.texts)} more not sent"
        elif not self.eof and self.reader is not None:
            unread = f"; stdin read up to line {self.line_no} only"
        why = f" (last problem: {self.last_problem})" if self.last_problem else ""
        return (
            f"timed out: {len(self.outbox)} of {plural(read, 'message')} not acked within "
            f"{self.opts.timeout:g} s{unread}{why}"
        )

    def _acked(self, event: Acked) -> None:
        self.deadlines.pop(event.pending.client_id, None)
        if self.opts.json:
            self.stdout.write(event.ack.frame() + "\n")
            self.stdout.flush()
        self.window_open.set()
        self._check_done()

    def _finish(self) -> None:
        if self.error is not None:
            raise self.error
        rejected = self.outbox.rejected
        if rejected:
            p, reason = rejected[0]
            total = self.outbox.seq + self.overlong
            raise MessageRejected(
                f"{len(rejected)} of {total} messages not sent; first: {self._where(p)}{reason}"
            )

    def _where(self, p: Pending) -> str:
        return f"line {p.origin}: " if self.reader is not None else ""

    # ------------------------------------------------------------------ input side

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

    async def _send_loop(self, stream: RoomStream) -> None:
        """Read messages and hand them to the stream, at most ``window`` unacked at once."""
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
                p = stream.add(text, self.opts.kind, self.line_no)
                self.deadlines[p.client_id] = time.monotonic() + self.opts.timeout
                batch.append(p)
            # all are in the outbox first: a drop mid-batch re-sends the rest
            await stream.write(batch)

    def _reject(self, p: Pending, reason: str | None) -> None:
        """Report a message the server refused (``reason`` None: already recorded)."""
        if reason is not None:
            self.outbox.rejected.append((p, reason))
        if len(self.outbox.rejected) <= MAX_REPORTED:
            where = f"line {p.origin}" if self.reader is not None else "message"
            self.note(f"{where} not sent: {self.outbox.rejected[-1][1]}")


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
