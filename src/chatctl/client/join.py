"""``chatctl join ROOM`` for scripts: one line per event on stdout, notices on stderr.

Plain lines are ``HH:MM:SS user: text`` (``HH:MM:SS * user text`` for actions, ``HH:MM:SS
-!- text`` for a moderator's announcement, ``user: (message deleted)`` for a deleted
message; newlines in a message shown as ``\\n``); ``--json`` prints the protocol's own
``message`` frames, one JSON object per line, each with the room's ``epoch`` added, so a
script can save ``ID@EPOCH`` and resume with ``--since ID@EPOCH``. Other frames
(``presence``) only when asked for (``--events``, or ``--type TYPE``, a filter): ``jq -r
.message`` sees messages only. The client reconnects with backoff and resumes from the last
id it printed until it is stopped, so nothing is printed twice; when the server no longer
has the missed messages it says so on stderr.

A resume across an epoch change (the room's history was lost: a ``--memory`` server
restarted, the room forgotten after ``--history-ttl``) follows the protocol's rule for
clients: the ids started again, so the new epoch's messages are printed from id 1 (as many
as the server keeps) after a ``missed messages`` notice on stderr; without ``@EPOCH`` the
server cannot tell, and ``--since ID`` skips the new epoch's first ID messages.

stdout is :mod:`chatctl.client.output`'s: a reader that goes away (``| head -1``) ends the
run with status 141 at once, even while the room is quiet; a failing stdout with status 7.

Fail fast, with ``chatctl send``'s exit statuses: the first connection gets
``connect_timeout`` seconds (:data:`CONNECT_TIMEOUT` by default), then
:class:`~chatctl.errors.ConnectError` (status 4) says why; later connections are retried for
as long as the client runs. ``timeout`` (``--timeout``) also bounds the whole wait: when it runs
out before ``--count`` messages or the end of the history (``--once``),
:class:`~chatctl.errors.WaitTimeout` (status 5); a follower without either just ends (0).
Connection attempts are not narrated: one notice when a connection drops, one when it is back.
A moderator's kick (close code 4003) or ban (4004, or HTTP 403 at a connection with the
ban's reason) ends the run with one line on stderr (``kicked from ops by alice: spam``) and
status 8, without reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from chatctl.client.events import (
    Connected,
    Disconnected,
    Reconnecting,
    TokenEvent,
)
from chatctl.client.output import watch_closed, write_line
from chatctl.client.room import Resume
from chatctl.client.settings import ClientSettings
from chatctl.client.shown import plain_body
from chatctl.client.stream import RoomStream
from chatctl.errors import ConnectError, OutputClosed, WaitTimeout
from chatctl.protocol import DmNotice, Message, Presence, PresenceBatch
from chatctl.tokens.renewal import TokenTrouble


@dataclass(frozen=True)
class JoinOptions:
    room: str
    json: bool = False
    since: int | None = None
    #: the epoch ``since`` was seen in (``--since ID@EPOCH``); None: not known
    epoch: str | None = None
    history: int | None = None
    count: int | None = None
    once: bool = False
    #: seconds for the first connection and, when given, for the whole wait (0: no bound)
    timeout: float | None = None
    #: the frame types printed with ``--json`` (:data:`JSON_TYPES`); messages by default
    types: frozenset[str] = frozenset({"message"})
    #: plain lines keep the colours, bold and underline messages carry (``--ansi``)
    ansi: bool = False


#: The frame types ``chatctl join --json`` can print (``--type``; ``--events``: all of them).
JSON_TYPES = ("message", "presence")


#: Seconds the first connection may take when no --timeout is given (as chatctl send).
CONNECT_TIMEOUT = 30.0


def connect_bound(timeout: float | None) -> float | None:
    """The first connection's bound for ``--timeout`` (None given: the default; 0: none)."""
    if timeout is None:
        return CONNECT_TIMEOUT
    return timeout or None


def clock(ts: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(float(ts)))
    except (TypeError, ValueError, OverflowError):
        return "--:--:--"


def plain_line(message: Message, *, ansi: bool = False) -> str:
    """The plain-text line for a message (with ``ansi``, its SGR colours kept): see
    :mod:`chatctl.client.shown`."""
    return f"{clock(message.ts)} {plain_body(message, ansi=ansi)}"


def missed_notice(resume: Resume, room: str) -> str:
    """What a ``recovered: false`` welcome means, saying who lost what: the backing store
    (the room's history was lost, ids restart) or the server's history limit."""
    after = f" after #{resume.after_id}" if resume.after_id is not None else ""
    if resume.epoch_changed:
        text = (
            f"missed messages: {room} lost its history on the server and its ids start again "
            f"from 1; messages{after} sent before that are gone"
        )
        if resume.not_kept:
            n = resume.not_kept
            text += f", and the server no longer keeps the first {n} of the new ones"
        return text
    return f"missed messages: the server no longer keeps every message of {room}{after}"


class ScriptJoin:
    def __init__(
        self,
        settings: ClientSettings,
        opts: JoinOptions,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.opts = opts
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.printed = 0
        self.connected = False
        self.last_failure = "no answer"
        self.token_trouble = TokenTrouble()
        self.stream = RoomStream(
            settings,
            opts.room,
            since=opts.since,
            epoch=opts.epoch,
            history=opts.history,
            connect_timeout=connect_bound(opts.timeout),
        )

    def note(self, text: str) -> None:
        print(f"chatctl: {text}", file=self.err, flush=True)

    def emit(self, frame: Message | Presence) -> bool:
        """Print one event; return True when ``--count`` is reached."""
        if self.opts.json:
            if frame.TYPE in self.opts.types:
                write_line(self.out, self.json_line(frame))
        elif isinstance(frame, Message):
            write_line(self.out, plain_line(frame, ansi=self.opts.ansi))
        else:
            return False
        if isinstance(frame, Message):
            self.printed += 1
            return self.opts.count is not None and self.printed >= self.opts.count
        return False

    def json_line(self, frame: Message | Presence) -> str:
        """The frame as the server sent it; a message with the room's epoch added (the
        frame is a compact JSON object, so the key goes in before its closing brace)."""
        line = frame.frame
        epoch = self.stream.client.epoch
        if isinstance(frame, Message) and epoch is not None and line.endswith("}"):
            line = f'{line[:-1]},"epoch":"{epoch}"}}'  # EPOCH_RE: nothing to escape
        return line

    async def run(self) -> None:
        """Print events until done; raise on a final error, when --timeout runs out or when
        the reader of stdout went away (even while nothing is printed)."""
        closed = watch_closed(self.out)
        follow = asyncio.ensure_future(self._bounded())
        try:
            if closed is None:
                await follow
                return
            await asyncio.wait({follow, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not follow.done():
                raise OutputClosed("")
            follow.result()
        finally:
            if closed is not None:
                closed.cancel()
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(follow, return_exceptions=True)

    async def _bounded(self) -> None:
        limit = self.opts.timeout or None
        try:
            async with asyncio.timeout(limit):
                await self._follow()
        except TimeoutError:
            assert limit is not None
            if not self.connected:
                raise ConnectError(
                    f"cannot connect to {self.stream.display_url}: {self.last_failure}"
                ) from None
            wanted = self.opts.count
            if wanted is not None:
                raise WaitTimeout(
                    f"timeout: {self.printed} of {wanted} messages after {limit:g} s"
                ) from None
            if self.opts.once:
                raise WaitTimeout(f"timeout: no end of the history after {limit:g} s") from None

    async def _follow(self) -> None:
        stream, url = self.stream, self.stream.display_url
        async with stream:
            async for event in stream:
                if isinstance(event, Message | Presence):
                    if self.emit(event):
                        return
                elif isinstance(event, PresenceBatch):  # printed as the changes it carries
                    for presence in event.presences():
                        self.emit(presence)
                elif isinstance(event, Connected):
                    self.connected = True
                    stream.connect_timeout = (
                        None  # once connected, reconnect for as long as it runs
                    )
                    resume = event.resume
                    if resume.reconnect:
                        self.note(f"reconnected to {url}")
                    if resume.missed:
                        self.note(missed_notice(resume, self.opts.room))
                    for message in resume.new_history:
                        if self.emit(message):
                            return
                    if self.opts.once:
                        return
                elif isinstance(event, Reconnecting):
                    self.last_failure = event.reason
                elif isinstance(event, Disconnected):
                    self.note(f"{event.reason}; reconnecting")
                elif isinstance(event, TokenEvent):
                    self.note_token(event)
                elif isinstance(event, DmNotice) and event.unread:  # on stderr, as notes are
                    self.note(
                        f"{event.unread} unread direct message(s) from {event.user}: "
                        f"chatctl join {event.room}"
                    )

    def note_token(self, event: TokenEvent) -> None:
        """Tell of token trouble, and of its end (a routine renewal says nothing)."""
        notice = self.token_trouble.tell(event)
        if notice is not None:
            self.note(notice.text)


def run_join(settings: ClientSettings, opts: JoinOptions) -> None:
    """Run ``chatctl join`` for a script; errors carry their exit status."""
    asyncio.run(ScriptJoin(settings, opts).run())
