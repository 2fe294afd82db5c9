"""``chatctl send ROOM [TEXT...]``: deliver messages and exit 0 only when every one was acked.

Pipelined: up to ``window`` messages are in flight (sent, not acked) at once, so a stream of
lines never waits one round trip per line. Every message carries a client id; when the
connection drops, the client reconnects and re-sends the unacked ones with the same ids, and
the server's de-duplication makes sure none is stored twice. Lines are stored in stdin order
through every failure (a refusal, a reconnect): the stream re-sends in the outbox's order.

stdin is one message per line, or per NUL-terminated record, blank-line-separated paragraph
or all of it (``split``: ``-0``, ``--paragraphs``, ``--whole``). A line that cannot be sent
(over 64 KiB, not UTF-8: :class:`~chatctl.client.lines.BadLine`) is reported with its line
number (a block: its message number) and counted as not sent (status 6). With ``--json``, when
stdout fails (its reader went away: status 141; a full disk: status 7), nothing more is read:
the run ends once what was sent is acked, and says how far it got.

Imports neither rich, prompt-toolkit, redis nor jwt (unless a token is minted locally).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from chatctl.client.events import (
    Acked,
    Connected,
    Deferred,
    Disconnected,
    Rejected,
    TokenProblem,
    TokenRenewed,
)
from chatctl.client.lines import BadLine, EncodingErrors, LineReader, Split
from chatctl.client.outbox import Outbox, Pending
from chatctl.client.output import watch_closed, write_line
from chatctl.client.sanitize import one_line
from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.errors import (
    ConnectError,
    DeliveryTimeout,
    MessageRejected,
    OutputClosed,
    OutputError,
    Removed,
    UsageError,
)
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
    #: stdin bytes that are not UTF-8: refuse the line, or send it with U+FFFD
    encoding_errors: EncodingErrors = "strict"
    #: what one message of stdin is: a line, a NUL-terminated record, a paragraph, all of it
    split: Split = "line"


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
        #: lines refused before sending (too long, not UTF-8)
        self.overlong = 0
        #: stdout failed (--json): nothing more is read, the run ends once the rest is acked
        self.output_error: OutputError | None = None
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
            self.reader = LineReader(self.stdin_fd, errors=opts.encoding_errors, split=opts.split)
            self.reader.start()
        closed = watch_closed(self.stdout) if opts.json else None
        if closed is not None:  # the reader of the acks may leave while none come
            closed.add_done_callback(self._stdout_closed)
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
                if closed is not None:
                    closed.cancel()
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
        except Removed as exc:  # kicked or banned: stop, saying how far it got
            left = len(self.outbox) + len(self.texts)
            suffix = f" ({plural(left, 'message')} not acked)" if left else ""
            raise Removed(
                f"{exc}{suffix}", room=exc.room, code=exc.code, reason=exc.reason
            ) from None
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
            unread = f"; stdin read up to {self._unit()} {self.line_no} only"
        why = f" (last problem: {self.last_problem})" if self.last_problem else ""
        return (
            f"timed out: {len(self.outbox)} of {plural(read, 'message')} not acked within "
            f"{self.opts.timeout:g} s{unread}{why}"
        )

    def _acked(self, event: Acked) -> None:
        self.deadlines.pop(event.pending.client_id, None)
        if self.opts.json and self.output_error is None:
            try:
                write_line(self.stdout, event.ack.frame())
            except OutputError as exc:
                self._output_lost(exc)
        self.window_open.set()
        self._check_done()

    def _stdout_closed(self, closed: asyncio.Future[None]) -> None:
        if not closed.cancelled():
            self._output_lost(OutputClosed(""))

    def _output_lost(self, exc: OutputError) -> None:
        """stdout failed: read no more; the run ends once every message sent is acked."""
        if self.output_error is None:
            self.output_error = exc
            self.eof = True
            self.window_open.set()
            self._check_done()

    def _output_summary(self, exc: OutputError) -> str:
        """How far the run got, for the one line a failed stdout ends it with."""
        what = "stdout was closed by its reader" if isinstance(exc, OutputClosed) else str(exc)
        where = f" after {self._unit()} {self.line_no} of stdin" if self.reader is not None else ""
        text = f"{what}; stopped{where}, {plural(self.outbox.acked, 'message')} acked"
        if self.outbox.rejected:
            text += f", {len(self.outbox.rejected)} not sent"
        return text

    def _finish(self) -> None:
        if self.error is not None:
            raise self.error
        if self.output_error is not None:
            raise type(self.output_error)(self._output_summary(self.output_error))
        rejected = self.outbox.rejected
        if rejected:
            p, reason = rejected[0]
            total = self.outbox.seq + self.overlong
            raise MessageRejected(
                f"{len(rejected)} of {total} messages not sent; first: {self._where(p)}{reason}"
            )

    def _where(self, p: Pending) -> str:
        return f"{self._unit()} {p.origin}: " if self.reader is not None else ""

    def _unit(self) -> str:
        """What a number counts in a report: lines of stdin, or its blocks."""
        return "line" if self.opts.split == "line" else "message"

    # ------------------------------------------------------------------ input side

    def _check_done(self) -> None:
        if self.eof and not self.outbox.pending:
            self.done.set()

    async def _next_texts(self, limit: int) -> list[str | BadLine]:
        if self.reader is None:
            texts: list[str | BadLine] = list(self.texts[:limit])
            self.texts = self.texts[limit:]
            return texts
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
            if self.output_error is not None:
                return  # stdout failed: what was read meanwhile is not sent
            if not texts:
                self.eof = True
                self._check_done()
                return
            batch: list[Pending] = []
            for text in texts:
                self.line_no += 1
                if isinstance(text, BadLine):
                    self.overlong += 1
                    self._reject(Pending("", "", origin=self.line_no), text.reason)
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
            where = f"{self._unit()} {p.origin}" if self.reader is not None else "message"
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
