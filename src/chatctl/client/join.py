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

from websockets.exceptions import ConnectionClosed

from chatctl.client.core import Resume, RoomClient, close_reason, parse_frame
from chatctl.client.sanitize import one_line
from chatctl.client.settings import ClientSettings
from chatctl.protocol import dumps


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


def plain_line(frame: dict[str, Any]) -> str | None:
    """The plain-text line for a message frame (None for other events)."""
    if frame.get("type") != "message":
        return None
    user, text = one_line(str(frame.get("user", "?"))), one_line(str(frame.get("message", "")))
    if frame.get("kind") == "action":
        return f"{clock(frame.get('ts'))} * {user} {text}"
    return f"{clock(frame.get('ts'))} {user}: {text}"


def missed_notice(resume: Resume, room: str) -> str:
    if resume.epoch_changed:
        return (
            f"missed messages: the server lost the history of {room} (restarted without "
            "persistence); message ids start again"
        )
    return f"missed messages: the server's history of {room} no longer covers the gap"


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
        self.client = RoomClient(
            settings,
            opts.room,
            since=opts.since,
            history=opts.history,
            on_retry=lambda reason, delay: self.note(
                f"cannot connect to {self.client.display_url}: {reason}; retrying in {delay:.1f} s"
            ),
        )

    def note(self, text: str) -> None:
        print(f"chatctl: {text}", file=self.err, flush=True)

    def emit(self, frame: dict[str, Any]) -> bool:
        """Print one event; return True when ``--count`` is reached."""
        if self.opts.json:
            if frame.get("type") not in ("message", "presence"):
                return False
            self.out.write(dumps(frame) + "\n")
        else:
            line = plain_line(frame)
            if line is None:
                return False
            self.out.write(line + "\n")
        self.out.flush()
        if frame.get("type") == "message":
            self.printed += 1
            return self.opts.count is not None and self.printed >= self.opts.count
        return False

    async def run(self) -> None:
        client = self.client
        while True:
            ws, welcome = await client.connect(deadline=None)
            try:
                resume = client.resume(welcome)
                if resume.reconnect:
                    self.note(f"reconnected to {client.display_url}")
                if resume.missed:
                    self.note(missed_notice(resume, self.opts.room))
                for message in resume.new_history:
                    if self.emit({"type": "message", **message}):
                        return
                if self.opts.once:
                    return
                async for data in ws:
                    frame = parse_frame(data)
                    if frame.get("type") == "message":
                        client.seen(frame)
                    if self.emit(frame):
                        return
                self.note(f"connection closed ({ws.close_code}); reconnecting")
            except ConnectionClosed as exc:
                self.note(f"{close_reason(exc)}; reconnecting")
            finally:
                await ws.close()


def run_join(settings: ClientSettings, opts: JoinOptions) -> None:
    try:
        asyncio.run(ScriptJoin(settings, opts).run())
    except BrokenPipeError:
        # The reader went away (``| head -3``): done, like any filter. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
