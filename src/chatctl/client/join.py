"""``chatctl join ROOM`` for scripts: one line per event on stdout, notices on stderr.

Plain lines are ``HH:MM:SS user: text`` (``HH:MM:SS * user text`` for actions; newlines in a
message shown as ``\\n``); ``--json`` prints the protocol's own ``message`` and ``presence``
frames, one JSON object per line. The client reconnects with backoff and resumes from the
last id it printed until it is stopped, so nothing is printed twice; when the server no
longer has the missed messages it says so on stderr.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from chatctl.client.core import Resume
from chatctl.client.events import (
    Connected,
    Disconnected,
    Reconnecting,
    TokenEvent,
    TokenExpired,
    TokenRenewed,
)
from chatctl.client.sanitize import one_line
from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.protocol import Message, Presence


@dataclass(frozen=True)
class JoinOptions:
    room: str
    json: bool = False
    since: int | None = None
    history: int | None = None
    count: int | None = None
    once: bool = False


def clock(ts: Any) -> str:
    try:
        return time.strftime("%H:%M:%S", time.localtime(float(ts)))
    except (TypeError, ValueError, OverflowError):
        return "--:--:--"


def plain_line(message: Message) -> str:
    """The plain-text line for a message."""
    user, text = one_line(message.user), one_line(message.text)
    if message.kind == "action":
        return f"{clock(message.ts)} * {user} {text}"
    return f"{clock(message.ts)} {user}: {text}"


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
        self.token_trouble = False
        self.stream = RoomStream(settings, opts.room, since=opts.since, history=opts.history)

    def note(self, text: str) -> None:
        print(f"chatctl: {text}", file=self.err, flush=True)

    def emit(self, frame: Message | Presence) -> bool:
        """Print one event; return True when ``--count`` is reached."""
        if self.opts.json:
            self.out.write(frame.frame + "\n")
        elif isinstance(frame, Message):
            self.out.write(plain_line(frame) + "\n")
        else:
            return False
        self.out.flush()
        if isinstance(frame, Message):
            self.printed += 1
            return self.opts.count is not None and self.printed >= self.opts.count
        return False

    async def run(self) -> None:
        stream, url = self.stream, self.stream.display_url
        async with stream:
            async for event in stream:
                if isinstance(event, Message | Presence):
                    if self.emit(event):
                        return
                elif isinstance(event, Connected):
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
                    self.note(
                        f"cannot connect to {url}: {event.reason}; retrying in {event.delay:.1f} s"
                    )
                elif isinstance(event, Disconnected):
                    self.note(f"{event.reason}; reconnecting")
                elif isinstance(event, TokenEvent):
                    self.note_token(event)

    def note_token(self, event: TokenEvent) -> None:
        """Tell of token trouble, and of its end (a routine renewal says nothing)."""
        if isinstance(event, TokenRenewed):
            if self.token_trouble:
                self.token_trouble = False
                self.note(f"token renewed from {event.origin}, valid until {clock(event.exp)}")
            return
        self.token_trouble = True
        if isinstance(event, TokenExpired):
            if event.renewable:
                self.note(f"{event.reason}; waiting for a new token from {event.origin}")
        else:
            self.note(event.reason)


def run_join(settings: ClientSettings, opts: JoinOptions) -> None:
    try:
        asyncio.run(ScriptJoin(settings, opts).run())
    except BrokenPipeError:
        # The reader went away (``| head -3``): done, like any filter. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
