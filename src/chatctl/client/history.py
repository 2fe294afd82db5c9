"""``chatctl history ROOM``: the messages a server keeps of a room, for scripts.

One read-only connection (``?receive=0&presence=0&history=0``: it is sent none of the
room's traffic and is not listed in it) pages back from the newest message with ``history``
requests (docs/protocol.md, "Older messages"), 200 messages a page, until it has the newest
``--limit`` messages that match, reaches ``--since``, or the server keeps nothing older.
Then it prints them oldest first: ``YYYY-MM-DD HH:MM:SS user: text`` lines (``* user text``
for actions, ``-!- text`` for a moderator's announcement, ``user: (message deleted)`` for a
deleted message; text sanitised as ``chatctl join`` does, one message a line), or with
``--json`` the protocol's ``message`` frames with the room's ``epoch`` added (a deleted one
with ``"deleted": true``, an announcement with its ``moderation`` object).

The bounds (:mod:`chatctl.client.bounds`): ``--since`` is after an id or from a time on,
``--until`` up to an id or a time, both included. An id given with the epoch it was seen in
(``ID@EPOCH``) from another epoch means nothing in the room's current one: the room's
history was lost since, so ``--since`` then takes every kept message of the new epoch, and
``--until`` none (a notice on stderr says so either way).

Exit statuses as ``chatctl send``: 2 usage, 3 token or room refused, 4 cannot connect within
``--timeout`` (default 30 s), 5 connected but the read did not finish within ``--timeout``,
6 the server refused the request (one older than history requests), 7 stdout failed, 8 a
moderator kicked or banned the user from the room meanwhile, 141 its reader went away. A
dropped connection is resumed where the read was.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from chatctl.client.bounds import Bound
from chatctl.client.events import Connected, Disconnected, Reconnecting
from chatctl.client.output import write_line
from chatctl.client.settings import ClientSettings
from chatctl.client.shown import plain_body
from chatctl.client.stream import RoomStream
from chatctl.errors import ConnectError, MessageRejected, WaitTimeout
from chatctl.protocol import (
    MAX_HISTORY_PAGE,
    RETRYABLE_CODES,
    ErrorFrame,
    HistoryPage,
    HistoryRequest,
    Message,
)

#: Seconds the first connection may take when no --timeout is given (as ``send``/``join``).
CONNECT_TIMEOUT = 30.0
#: Messages printed when no --limit is given.
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class HistoryOptions:
    room: str
    since: Bound | None = None
    until: Bound | None = None
    #: the newest N matching messages; 0: every kept one
    limit: int = DEFAULT_LIMIT
    #: only messages of these users (none: everyone's)
    users: frozenset[str] = frozenset()
    #: only messages whose text this matches (``re.search``)
    grep: re.Pattern[str] | None = None
    json: bool = False
    #: seconds for the first connection and, when given, for the whole read (0: no bound)
    timeout: float | None = None


def stamp(ts: float) -> str:
    """A message's local date and time, to the second."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    except (ValueError, OverflowError, OSError):
        return "????-??-?? ??:??:??"


def text_line(message: Message) -> str:
    """The plain line for a message, safe for a terminal: ``user: (message deleted)`` for
    a deleted one, ``-!- alice kicked bob: spam`` for a moderator's announcement."""
    return f"{stamp(message.ts)} {plain_body(message)}"


def json_line(message: Message, epoch: str) -> str:
    """The message frame as the server sent it, with the room's epoch (``ID@EPOCH`` for a
    later ``--since``): the frame is a compact object, so the key goes before its brace."""
    line = message.frame
    return f'{line[:-1]},"epoch":"{epoch}"}}' if line.endswith("}") else line


@dataclass
class Selection:
    """Which messages a read keeps, page by page from the newest back (no I/O)."""

    opts: HistoryOptions
    #: the room's epoch, once known
    epoch: str | None = None
    picked: list[Message] = field(default_factory=list)
    #: ask for messages below this id next (None: the newest)
    before: int | None = None
    done: bool = False
    #: the id bounds, once the epoch says what they mean
    since_id: int | None = None
    until_id: int | None = None
    notices: list[str] = field(default_factory=list)

    def start(self, epoch: str) -> None:
        """(Re)start the read in ``epoch``: what each id bound means there."""
        opts, room = self.opts, self.opts.room
        self.epoch, self.picked, self.done, self.before = epoch, [], False, None
        self.since_id = self.until_id = None
        self.notices = []
        since, until = opts.since, opts.until
        if since is not None and since.id is not None:
            if since.epoch is None or since.epoch == epoch:
                self.since_id = since.id
            else:
                self.notices.append(
                    f"{room} lost its history since epoch {since.epoch} (now {epoch}): "
                    f"--since {since.id}@{since.epoch} is before every message kept"
                )
        if until is not None and until.id is not None:
            if until.epoch is None or until.epoch == epoch:
                self.until_id = until.id
                self.before = until.id + 1
            else:
                self.notices.append(
                    f"{room} lost its history since epoch {until.epoch} (now {epoch}): "
                    f"--until {until.id}@{until.epoch} is before every message kept"
                )
                self.done = True

    def request(self, client_id: str) -> HistoryRequest:
        return HistoryRequest(self.before, MAX_HISTORY_PAGE, client_id)

    def take(self, page: HistoryPage) -> None:
        """Account for one page (oldest first): keep what matches, newest first, and say
        whether the read is done."""
        opts = self.opts
        since_ts = opts.since.ts if opts.since is not None else None
        until_ts = opts.until.ts if opts.until is not None else None
        for m in reversed(page.messages):
            if (self.since_id is not None and m.id <= self.since_id) or (
                since_ts is not None and m.ts < since_ts
            ):
                self.done = True
                return
            if until_ts is not None and m.ts > until_ts:
                continue
            if self.until_id is not None and m.id > self.until_id:
                continue
            if opts.users and m.user not in opts.users:
                continue
            if opts.grep is not None and opts.grep.search(m.text) is None:
                continue
            self.picked.append(m)
            if opts.limit and len(self.picked) >= opts.limit:
                self.done = True
                return
        if not page.more or not page.messages:
            self.done = True
            first = page.messages[0].id if page.messages else None
            if self.since_id is not None and first is not None and first > self.since_id + 1:
                self.notices.append(
                    f"missed messages: the server no longer keeps every message of "
                    f"{opts.room} after #{self.since_id} (its oldest is #{first})"
                )
            return
        self.before = page.messages[0].id


class HistoryReader:
    """One ``chatctl history`` run: read the pages, then print."""

    def __init__(
        self,
        settings: ClientSettings,
        opts: HistoryOptions,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.opts = opts
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.selection = Selection(opts)
        self.connected = False
        self.last_failure = "no answer"
        self.asked = 0
        connect = CONNECT_TIMEOUT if opts.timeout is None else (opts.timeout or None)
        self.stream = RoomStream(
            settings,
            opts.room,
            history=0,
            presence=False,
            receive=False,
            connect_timeout=connect,
            wait_for_token=False,
        )

    def note(self, text: str) -> None:
        print(f"chatctl: {text}", file=self.err, flush=True)

    async def run(self) -> None:
        """Read, then print oldest first; errors carry their exit status."""
        limit = self.opts.timeout or None
        try:
            async with asyncio.timeout(limit):
                await self._read()
        except TimeoutError:
            assert limit is not None
            if not self.connected:
                raise ConnectError(
                    f"cannot connect to {self.stream.display_url}: {self.last_failure}"
                ) from None
            raise WaitTimeout(
                f"timeout: the history of {self.opts.room} was not read within {limit:g} s "
                f"({len(self.selection.picked)} messages so far)"
            ) from None
        sel = self.selection
        for notice in sel.notices:
            self.note(notice)
        epoch = sel.epoch or ""
        for m in reversed(sel.picked):
            write_line(self.out, json_line(m, epoch) if self.opts.json else text_line(m))

    async def _ask(self) -> None:
        self.asked += 1
        await self.stream.request(self.selection.request(f"h{self.asked}"))

    async def _read(self) -> None:
        stream, sel = self.stream, self.selection
        async with stream:
            async for event in stream:
                if isinstance(event, Connected):
                    self.connected = True
                    stream.connect_timeout = None  # once connected, resume for as long as it runs
                    epoch = event.welcome.epoch
                    if sel.epoch != epoch:  # the first welcome, or the room's ids restarted
                        sel.start(epoch)
                    if sel.done:
                        return
                    await self._ask()
                elif isinstance(event, HistoryPage | ErrorFrame):
                    if event.client_id != f"h{self.asked}":
                        continue  # an answer to a request made before a reconnect
                    if isinstance(event, ErrorFrame):
                        await self._refused(event)
                        continue
                    if event.epoch != sel.epoch:
                        sel.start(event.epoch)
                    else:
                        sel.take(event)
                    if sel.done:
                        return
                    await self._ask()
                elif isinstance(event, Reconnecting):
                    self.last_failure = event.reason
                elif isinstance(event, Disconnected):
                    self.note(f"{event.reason}; reconnecting")

    async def _refused(self, error: ErrorFrame) -> None:
        """Ask again after a retryable refusal (rate limit, broker down); fail otherwise."""
        if error.code not in RETRYABLE_CODES:
            raise MessageRejected(f"the server refused the history request: {error.reason}")
        await asyncio.sleep(error.retry_after or 1.0)
        await self._ask()


def run_history(settings: ClientSettings, opts: HistoryOptions) -> None:
    """Run ``chatctl history`` for a script; errors carry their exit status."""
    asyncio.run(HistoryReader(settings, opts).run())
