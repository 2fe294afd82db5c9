"""The interactive ``chatctl join`` on a terminal.

Two tasks share the terminal: the network task prints incoming events, the input task awaits
``PromptSession.prompt_async()``. Both run inside ``patch_stdout(raw=True)``, so printed lines
(ANSI strings rendered by :mod:`chatctl.ui.render`) go above the input line, which is then
redrawn intact. prompt-toolkit restores the terminal on every way out, SIGTERM and SIGHUP
included (they end the session like /quit).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections import OrderedDict
from typing import Any, TypeVar

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from chatctl.client.core import Outbox, RoomClient, close_reason, parse_frame
from chatctl.client.join import missed_notice
from chatctl.client.settings import ClientSettings
from chatctl.config import state_dir
from chatctl.errors import ConfigError
from chatctl.protocol import MessageKind
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.keys import create_key_bindings
from chatctl.ui.render import Renderer, want_color

T = TypeVar("T")
D = TypeVar("D")

#: Seconds a join waits before it is shown; a leave in that time hides both.
PRESENCE_DELAY = 2.0
#: Names remembered for completion (most recently active first).
MAX_KNOWN_USERS = 500


def _setting(config: dict[str, Any], key: str, kind: type[T], default: D) -> T | D:
    """``[join] key`` from config.toml, checked to be a ``kind``."""
    value = config.get(key, default)
    if value is default or (isinstance(value, kind) and not (kind is int and value is True)):
        return value
    raise ConfigError(f"config.toml: [join] {key} must be a {kind.__name__}, not {value!r}")


def input_history() -> History:
    """Up/Down history in ``$XDG_STATE_HOME/chatctl/history`` (in memory if unwritable)."""
    path = state_dir() / "history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


class ChatUI:
    def __init__(
        self,
        settings: ClientSettings,
        room: str,
        *,
        since: int | None = None,
        history: int | None = None,
    ) -> None:
        config: dict[str, Any] = dict(settings.config.get("join", {}))
        self.settings = settings
        self.room = room
        self.bell = _setting(config, "bell", bool, True)
        self.history = history if history is not None else _setting(config, "history", int, None)
        self.client = self._client(room, since)
        self.outbox = Outbox()
        self.ws: ClientConnection | None = None
        self.me = settings.user_hint or ""
        self.present: set[str] = set()
        self.active: OrderedDict[str, None] = OrderedDict()
        colors = _setting(config, "colors", dict, {})
        _setting(config, "color", bool, True)
        self.renderer = Renderer(
            me=self.me,
            color=want_color(config),
            colors={str(k): str(v) for k, v in colors.items()},
            timestamp=_setting(config, "timestamp", str, "%H:%M:%S"),
        )
        self.completer = ChatCompleter(
            commands.completion_table(),
            self.user_names,
            {"/bell": lambda: ["on", "off"], "/help": lambda: [c.name for c in commands.COMMANDS]},
        )
        self.session: PromptSession[str] = PromptSession(
            message=self._prompt,
            completer=self.completer,
            complete_while_typing=False,
            key_bindings=create_key_bindings(),
            history=input_history(),
            enable_suspend=True,
        )
        self._joins: dict[str, asyncio.TimerHandle] = {}
        self._day: str | None = None
        self.stop = asyncio.Event()
        self.reconnect = asyncio.Event()

    def _prompt(self) -> str:
        return f"[{self.room}] " if self.ws is not None else f"[{self.room} offline] "

    def _client(self, room: str, since: int | None) -> RoomClient:
        return RoomClient(
            self.settings,
            room,
            since=since,
            history=self.history,
            on_retry=lambda reason, delay: self.error(
                f"cannot connect to {self.settings.room_url(room)}: {reason}; "
                f"retrying in {delay:.1f} s"
            ),
        )

    # ------------------------------------------------------------------ output

    def write(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def info(self, text: str) -> None:
        self.write(self.renderer.system(text))

    def error(self, text: str) -> None:
        self.write(self.renderer.system(text, error=True))

    def clear(self) -> None:
        self.session.app.renderer.clear()

    def user_names(self) -> list[str]:
        recent = [u for u in reversed(self.active) if u != self.me]
        rest = sorted(self.present - set(recent) - {self.me})
        return recent + rest

    def _active(self, user: str) -> None:
        self.active.pop(user, None)
        self.active[user] = None
        if len(self.active) > MAX_KNOWN_USERS:
            self.active.popitem(last=False)

    # ------------------------------------------------------------------ input side

    async def send_text(self, text: str, kind: MessageKind = "text") -> None:
        if not text.strip():
            return
        p = self.outbox.add(text, kind)
        if self.ws is None:
            self.info("not connected: the message will be sent when the connection is back")
            return
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(p.frame)

    async def request_who(self) -> None:
        if self.ws is None:
            self.error("not connected")
            return
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send('{"type":"who"}')

    async def switch_room(self, room: str) -> None:
        if room == self.room:
            self.info(f"already in {room}")
            return
        if self.outbox:
            self.error(f"{len(self.outbox)} unsent messages to {self.room} dropped")
            self.outbox = Outbox()
        self.room = room
        self.client = self._client(room, None)
        self.present.clear()
        self.reconnect.set()
        if self.ws is not None:
            await self.ws.close()

    async def confirm_paste(self, text: str) -> bool:
        lines = text.count("\n") + 1
        try:
            answer = await PromptSession[str]().prompt_async(
                f"send this {lines}-line text as one message? [y/N] "
            )
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() in ("y", "yes")

    async def handle_line(self, line: str) -> bool:
        multiline = "\n" in line.strip() and not line.startswith("/")
        if multiline and not await self.confirm_paste(line):
            self.info("not sent (edit it with Up)")
            return True
        return await commands.dispatch(self, line)

    # ------------------------------------------------------------------ network side

    async def network(self) -> None:
        while True:
            self.reconnect.clear()
            client = self.client
            ws, welcome = await client.connect(deadline=None)
            try:
                self.ws = ws
                self.session.app.invalidate()
                self._welcome(client, welcome)
                for p in self.outbox.unacked():
                    await ws.send(p.frame)
                async for data in ws:
                    self._event(parse_frame(data))
                if not self.reconnect.is_set():
                    self.error(f"connection closed ({ws.close_code}); reconnecting")
            except ConnectionClosed as exc:
                if not self.reconnect.is_set():
                    self.error(f"{close_reason(exc)}; reconnecting")
            finally:
                self.ws = None
                self.session.app.invalidate()
                await ws.close()

    def _welcome(self, client: RoomClient, welcome: dict[str, Any]) -> None:
        resume = client.resume(welcome)
        self.me = self.renderer.me = str(welcome.get("user") or self.me)
        self.present = {str(u) for u in welcome.get("users", [])}
        if resume.reconnect:
            self.info(f"reconnected to {client.room}")
        if resume.missed:
            self.error(missed_notice(resume, client.room))
        for m in resume.new_history:
            self._message(m, live=False)
        if not resume.reconnect:
            users = sorted(self.present)
            self.info(
                f"joined {client.room} as {self.me}; {len(users)} here: {', '.join(users)}"
                " (/help lists commands)"
            )

    def _event(self, frame: dict[str, Any]) -> None:
        ftype = frame.get("type")
        if ftype == "message":
            self.client.seen(frame)
            self._message(frame, live=True)
        elif ftype == "presence":
            user = str(frame.get("user"))
            if user == self.me:  # our own arrival: the "joined" line already said it
                return
            self._presence(user, str(frame.get("event")), frame.get("ts"))
        elif ftype == "who":
            users = [str(u) for u in frame.get("users", [])]
            self.present = set(users)
            self.info(f"users in {self.room} ({len(users)}): {' '.join(users)}")
        elif ftype == "ack":
            self.outbox.on_ack(frame)
        elif ftype == "error":
            self._error(frame)

    def _presence(self, user: str, event: str, ts: Any) -> None:
        """Show joins and leaves, except brief visits: a join is shown after
        :data:`PRESENCE_DELAY` seconds, and a leave within that time hides both (each
        ``chatctl send`` connects, posts and leaves: its message is what matters)."""
        room = self.room
        if event == "join":
            self.present.add(user)
            if user in self._joins:
                return
            line = self.renderer.system(f"{user} joined {room}", ts=ts)
            self._joins[user] = asyncio.get_running_loop().call_later(
                PRESENCE_DELAY, self._show_join, user, line
            )
            return
        self.present.discard(user)
        pending = self._joins.pop(user, None)
        if pending is not None:
            pending.cancel()
            return
        self.write(self.renderer.system(f"{user} left {room}", ts=ts))

    def _show_join(self, user: str, line: str) -> None:
        if self._joins.pop(user, None) is not None:
            self.write(line)

    def _message(self, frame: dict[str, Any], *, live: bool) -> None:
        self._active(str(frame.get("user")))
        self._day_marker(frame.get("ts"))
        line, mention = self.renderer.message(frame)
        self.write(line)
        if mention and live and self.bell:
            sys.stdout.write("\a")
            sys.stdout.flush()

    def _day_marker(self, ts: Any) -> None:
        """A ``-!- Tuesday 24 November 2026`` line before the first message of another day
        (the time column shows no date)."""
        try:
            day = time.strftime("%A %d %B %Y", time.localtime(float(ts)))
        except (TypeError, ValueError, OverflowError):
            return
        today = time.strftime("%A %d %B %Y")
        if day != (self._day or today):
            self.write(self.renderer.system(day, ts=float(ts)))
        self._day = day

    def _error(self, frame: dict[str, Any]) -> None:
        p, delay = self.outbox.on_error(frame)
        reason = frame.get("reason") or frame.get("code")
        if p is None:
            self.error(f"server: {reason}")
        elif delay is not None:
            asyncio.get_running_loop().call_later(delay, self._resend, p.client_id)
        else:
            self.error(f"not sent: {reason}")

    def _resend(self, client_id: str) -> None:
        p = self.outbox.pending.get(client_id)
        if p is not None and self.ws is not None:
            task = asyncio.ensure_future(self.ws.send(p.frame))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stop.set)
        with patch_stdout(raw=True):
            net = asyncio.create_task(self.network())
            stop = asyncio.create_task(self.stop.wait())
            try:
                while True:
                    prompt = asyncio.create_task(self.session.prompt_async())
                    await asyncio.wait({prompt, net, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not prompt.done():
                        prompt.cancel()
                        with contextlib.suppress(asyncio.CancelledError, EOFError):
                            await prompt
                        if net.done():
                            net.result()  # a final error (e.g. token expired): re-raised
                        return
                    try:
                        line = prompt.result()
                    except (EOFError, KeyboardInterrupt):
                        return
                    if not await self.handle_line(line):
                        return
            finally:
                for task in (net, stop):
                    task.cancel()
                await asyncio.gather(net, stop, return_exceptions=True)
                for sig in (signal.SIGTERM, signal.SIGHUP):
                    loop.remove_signal_handler(sig)


def run_interactive(
    settings: ClientSettings, room: str, *, since: int | None = None, history: int | None = None
) -> None:
    async def main() -> None:
        await ChatUI(settings, room, since=since, history=history).run()

    asyncio.run(main())
