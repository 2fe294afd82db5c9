"""The senders of a chaos schedule, each recording what it sends and is answered into the
history: raw WebSocket senders that pipeline and re-send with the same client_id on a new
connection, and ``chatctl send --json`` processes fed lines. Every loop ends by its
deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import shlex
import subprocess
import sys
from typing import Any

from websockets.asyncio.client import ClientConnection

from chatctl.bench.chaos.check import NOT_STORED
from chatctl.bench.chaos.clients import Client
from chatctl.bench.chaos.history import Ack, History, Refusal, Send


class RawSender(Client):
    """Pipelines up to ``window`` messages; after a refusal it may retry, or a lost
    connection, it connects again and re-sends every unacked message in order, with its
    client_id (docs/protocol.md, "Resuming"). A burst sender (a slow_consumer fault's) sends
    ``limit`` messages of ``pad`` more characters each."""

    def __init__(
        self,
        *args: Any,
        window: int = 4,
        interval: float = 0.05,
        pad: int = 0,
        limit: int | None = None,
    ) -> None:
        super().__init__(*args)
        self.window, self.interval = window, interval
        self.pad, self.limit = pad, limit
        self.seq = 0
        self.unacked: dict[str, str] = {}  # client_id -> text, in send order
        self.acked = 0

    async def run(self, send_until: float, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < deadline and (loop.time() < send_until or self.unacked):
            if self.limit is not None and self.seq >= self.limit and not self.unacked:
                return
            try:
                self.ws = await self._open("presence=0&receive=0")
            except Exception:
                await asyncio.sleep(0.2 + self.rng.random() * 0.3)
                continue
            try:
                await self._session(self.ws, send_until, deadline)
            except Exception:
                pass
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(), 1)
                self.ws = None

    def _text(self, seq: int) -> str:
        """Message ``seq``'s text: unique, ``NAME#SEQ`` then the padding."""
        return f"{self.name}#{seq}" + (" " + "." * self.pad if self.pad else "")

    def _send_frame(self, cid: str, text: str) -> str:
        self.h.add(Send(self.name, self.room, text, int(cid.rsplit("-", 1)[1]), client_id=cid))
        return json.dumps({"type": "message", "message": text, "client_id": cid})

    async def _session(self, ws: ClientConnection, send_until: float, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        epoch = welcome["epoch"]
        for cid, text in list(self.unacked.items()):
            await ws.send(self._send_frame(cid, text))
        next_send = loop.time()
        while loop.time() < deadline:
            sending = loop.time() < send_until and len(self.unacked) < self.window
            sending = sending and (self.limit is None or self.seq < self.limit)
            if not sending and not self.unacked:
                return
            wait = max(0.0, next_send - loop.time()) if sending else 0.5
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), wait))
            except TimeoutError:
                if sending and loop.time() >= next_send:
                    self.seq += 1
                    cid, text = f"{self.name}-{self.seq}", self._text(self.seq)
                    self.unacked[cid] = text
                    await ws.send(self._send_frame(cid, text))
                    next_send = loop.time() + self.interval * (0.5 + self.rng.random())
                continue
            kind, cid = frame.get("type"), frame.get("client_id")
            if kind == "ack" and cid is not None:
                if cid in self.unacked:
                    text = self.unacked.pop(cid)
                    self.acked += 1
                else:  # a duplicate ack of one already counted
                    text = self._text(int(cid.rsplit("-", 1)[1]))
                # the ack's own epoch: the room may have lost its history since the welcome
                acked_in = frame.get("epoch") or epoch
                self.h.add(
                    Ack(self.name, self.room, text, cid, frame["id"], frame["duplicate"], acked_in)
                )
            elif kind == "error":
                code = frame.get("code", "")
                self.h.add(
                    Refusal(
                        self.name,
                        self.room,
                        cid,
                        code,
                        frame.get("blocked_by"),
                        self.unacked.get(cid) if cid else None,
                        frame.get("stored"),
                    )
                )
                if code in NOT_STORED:
                    await asyncio.sleep(min(float(frame.get("retry_after") or 0.2), 2.0))
                    return  # a new connection, which re-sends every unacked message in order
                if cid is not None:
                    self.unacked.pop(cid, None)  # refused for good


class CliSender:
    """A ``chatctl send ROOM --json`` process fed one line per message; its acks are read
    from stdout."""

    def __init__(
        self,
        name: str,
        room: str,
        url: str,
        env: dict[str, str],
        history: History,
        rng: random.Random,
        *,
        interval: float = 0.05,
        http: bool = False,
        token_ttl: int | None = None,
    ) -> None:
        self.name, self.room, self.url, self.env = name, room, url, env
        self.h, self.rng, self.interval = history, rng, interval
        #: post through the HTTP API (``send --http``) instead of a WebSocket
        self.http = http
        #: tokens of this many seconds from ``--token-command``, renewed as they run out
        self.token_ttl = token_ttl
        self.proc: asyncio.subprocess.Process | None = None
        self.seq = 0
        self.acked = 0
        self.status: int | None = None

    async def run(self, send_until: float, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        cmd = [sys.executable, "-m", "chatctl", "send", self.room, "--json", "--user", self.name]
        cmd += ["--server", self.url, "--timeout", str(max(5, int(deadline - loop.time())))]
        cmd += ["--http"] if self.http else []
        if self.token_ttl is not None:
            mint = [sys.executable, "-m", "chatctl", "token", "create", "--user", self.name]
            mint += ["--ttl", f"{self.token_ttl}s"]
            cmd += ["--token-command", shlex.join(mint)]
        self.proc = await asyncio.create_subprocess_exec(
            *cmd,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        reader = asyncio.ensure_future(self._read_acks())
        assert self.proc.stdin is not None
        try:
            while loop.time() < send_until:
                self.seq += 1
                text = f"{self.name}#{self.seq}"
                self.h.add(Send(self.name, self.room, text, self.seq))
                self.proc.stdin.write(text.encode() + b"\n")
                await self.proc.stdin.drain()
                await asyncio.sleep(self.interval * (0.5 + self.rng.random()))
            self.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), max(0.1, deadline - loop.time()))
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.kill()
            reader.cancel()
            self.status = await self.proc.wait()

    async def _read_acks(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            with contextlib.suppress(ValueError, KeyError):
                a = json.loads(line)
                self.h.add(
                    Ack(
                        self.name,
                        self.room,
                        None,
                        a["client_id"],
                        a["id"],
                        a.get("duplicate", False),
                        a.get("epoch"),
                    )
                )
                self.acked += 1

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


__all__ = ["CliSender", "RawSender"]
