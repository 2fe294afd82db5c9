"""The load-generating side of ``chatctl bench``: one :class:`Worker` per process holds a share
of the connections, paces the senders among them and records every delivery.

A worker is driven by four calls, in order: :meth:`Worker.connect`, then for each step
:meth:`Worker.send` and :meth:`Worker.drain`, and finally :meth:`Worker.close`. Each returns
plain picklable data, so the same worker runs in the driver's process (``--procs 1``) or in
a child process behind a pipe (:func:`chatctl.bench.processes.serve_pipe`).

Clocks: send times travel inside the message text as ``time.time()`` microseconds and each
delivery is stamped with ``time.time()`` on arrival. Senders and receivers may be different
processes, so a monotonic clock cannot be compared; on one host every process reads the same
wall clock, which is all the latency figures need (loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatctl.bench.rawclient import HandshakeFailed, RawReceiver, open_receiver
from chatctl.bench.stats import MARKER_RE, PairCounts, SeqTracker, make_text
from chatctl.protocol import (
    Ack,
    ErrorFrame,
    Message,
    ProtocolError,
    SendMessage,
    Welcome,
    parse_server_frame,
    peek_type,
    type_name,
)

#: Seconds the connections wait for their first frames (welcomes) once none has arrived for
#: that long (a server that sends none), at most the connect timeout (a storm still arriving).
WELCOME_WAIT = 2.0
#: The marker right after the ``message`` key, as compact JSON writes it (see _receive).
FAST_MARKER_RE = re.compile(r'"message":"' + MARKER_RE.pattern)
#: the same for a frame as bytes (a :class:`RawReceiver`'s): its type, its marker
_TYPE_FIRST_B = re.compile(rb'\{\s*"type"\s*:\s*"([a-z_]{1,32})"')
_MARKER_B = re.compile(b'"message":"' + MARKER_RE.pattern.encode()).search


def _failure(exc: Exception) -> str:
    """Why a connection did not open, as the report counts it."""
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, HandshakeFailed):
        return f"HTTP {exc.status}" if exc.status else str(exc)
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError):
        return type(exc).__name__ if not exc.strerror else exc.strerror
    return type(exc).__name__


@dataclass(frozen=True)
class ClientSpec:
    """One connection the bench opens: global ``index``, its room, whether it sends."""

    index: int
    room: int  # -1: the idle room
    url: str
    user: str
    sender: bool = False
    #: connected with ``?receive=0``: it gets its acks, not the room's messages
    write_only: bool = False


@dataclass
class _Client:
    spec: ClientSpec
    #: a sender's connection (websockets' client); a receiver's is ``raw``
    ws: ClientConnection | None = None
    raw: RawReceiver | None = None
    welcomed: asyncio.Event = field(default_factory=asyncio.Event)
    #: perf_counter() when its first frame (the welcome) arrived
    welcomed_at: float = 0.0
    trackers: dict[int, SeqTracker] = field(default_factory=dict)
    open: bool = True
    task: asyncio.Task[None] | None = None


class Worker:
    """A share of the bench's connections, in one process, on one event loop."""

    def __init__(
        self,
        specs: list[ClientSpec],
        *,
        sender_rooms: dict[int, int],
        token: str | None,
        secret: bytes | None,
    ) -> None:
        self.specs = specs
        self.sender_rooms = sender_rooms
        self.token = token
        self.secret = secret
        self.clients: list[_Client] = []
        self.step = -1
        self.latencies = array("d")
        self.counters: Counter[str] = Counter()
        self.last_delivery = 0.0
        self.last_frame = 0.0
        #: frames received, of any type (what a connect storm cost the clients)
        self.frames = 0
        self.sent: dict[int, int] = {}
        self.receivers: list[_Client] = []
        self.send_lag = 0.0
        self._cpu: tuple[float, float] = (0.0, 0.0)

    # ------------------------------------------------------------------ connect

    def _token_for(self, user: str) -> str | None:
        if self.token is not None:
            return self.token
        if self.secret is None:
            return None
        from chatctl.tokens.mint import mint

        return mint(self.secret, user, ttl=24 * 3600)

    async def connect(self, timeout: float) -> dict[str, Any]:
        """Open every connection at once; return connect times and failure reasons."""
        tokens: dict[str, str | None] = {}
        for spec in self.specs:
            if spec.user not in tokens:
                tokens[spec.user] = self._token_for(spec.user)
        started = time.perf_counter()
        results = await asyncio.gather(
            *(self._open(spec, tokens[spec.user], timeout) for spec in self.specs)
        )
        times = [r for r in results if isinstance(r, float)]
        failures = Counter(r for r in results if isinstance(r, str))
        await self._welcomes(started + timeout)
        welcome_times = [c.welcomed_at - started for c in self.clients if c.welcomed.is_set()]
        return {
            "times": times,
            "failures": dict(failures),
            "welcomed": len(welcome_times),
            "welcome_times": welcome_times,
        }

    async def _welcomes(self, deadline: float) -> None:
        """Wait until every open connection has its first frame, until none has come for
        :data:`WELCOME_WAIT` seconds, or until ``deadline`` (perf_counter)."""
        waits = [c.welcomed.wait() for c in self.clients]
        everyone = asyncio.ensure_future(asyncio.gather(*waits))
        try:
            while not everyone.done():
                count = sum(c.welcomed.is_set() for c in self.clients)
                left = deadline - time.perf_counter()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(everyone), min(WELCOME_WAIT, left))
                if left <= WELCOME_WAIT or sum(c.welcomed.is_set() for c in self.clients) == count:
                    return
        finally:
            everyone.cancel()

    async def _open(self, spec: ClientSpec, token: str | None, timeout: float) -> float | str:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        started = time.perf_counter()
        if not spec.sender and spec.url.startswith("ws://"):  # wss://: websockets' client
            return await self._open_receiver(spec, headers or {}, started, timeout)
        try:
            ws = await connect(
                spec.url,
                additional_headers=headers,
                open_timeout=timeout,
                compression=None,
                max_size=None,
                ping_interval=None,
                close_timeout=2,
            )
        except Exception as exc:
            return _failure(exc)
        elapsed = time.perf_counter() - started
        client = _Client(spec, ws)
        client.task = asyncio.create_task(self._receive(client))
        self.clients.append(client)
        return elapsed

    async def _open_receiver(
        self, spec: ClientSpec, headers: dict[str, str], started: float, timeout: float
    ) -> float | str:
        """A connection that only listens: :class:`~chatctl.bench.rawclient.RawReceiver`,
        whose frames cost the load a fraction of what websockets' client costs."""
        client = _Client(spec)
        frame = self._frame

        def on_text(data: bytes, arrived: float) -> None:
            if not client.welcomed.is_set():
                client.welcomed_at = time.perf_counter()
                client.welcomed.set()  # a welcome, or whatever a server sends first
            frame(client, data, arrived)

        try:
            client.raw = await open_receiver(spec.url, headers, on_text, timeout)
        except Exception as exc:
            return _failure(exc)
        elapsed = time.perf_counter() - started
        client.raw.on_close = lambda: self._closed(client)
        self.clients.append(client)
        return elapsed

    def _closed(self, client: _Client) -> None:
        client.open = False
        if self.step >= 0:
            self.counters["disconnects"] += 1

    # ------------------------------------------------------------------ receive

    async def _receive(self, client: _Client) -> None:
        """A sender's frames (its acks, and its room's messages): see :meth:`_frame`."""
        ws = client.ws
        assert ws is not None
        frame = self._frame
        now = time.time
        try:
            data = await ws.recv()
            client.welcomed_at = time.perf_counter()
            client.welcomed.set()  # a welcome, or whatever a server sends first
            while True:
                frame(client, data, now())
                data = await ws.recv()
        except ConnectionClosed:
            pass
        finally:
            self._closed(client)

    def _frame(self, client: _Client, data: str | bytes, arrived: float) -> None:
        """Record one frame; message frames are matched to (step, sender, seq).

        A frame that starts with its ``type`` (as chatctl and the reference write them) is
        read without decoding the JSON: a ``message`` has its marker found by a search (in
        a message frame ``"message":"`` can only be the key itself, since quotes inside
        strings are escaped), an ``ack`` is counted (one a sent message: decoding each cost
        the load client ~5% of a core at 50 rooms x 20, work the relay's load never does).
        Any other frame, or a message written another way, is parsed into protocol's types
        (:meth:`_decode`)."""
        self.frames += 1
        self.last_frame = arrived
        if isinstance(data, bytes):
            t = _TYPE_FIRST_B.match(data)
            kind = t[1] if t is not None else None
            if kind == b"ack":
                self.counters["acks"] += 1
                return
            m: re.Match[Any] | None = _MARKER_B(data) if kind == b"message" else None
        else:
            kind_s = peek_type(data)
            if kind_s == "ack":
                self.counters["acks"] += 1
                return
            m = FAST_MARKER_RE.search(data) if kind_s == "message" else None
        if m is None:
            m = self._decode(client, data)
            if m is None:
                return
        if int(m[1]) != self.step:
            self.counters["late"] += 1
            return
        sender = int(m[2])
        trackers = client.trackers
        tracker = trackers.get(sender)
        if tracker is None:
            tracker = trackers[sender] = SeqTracker()
        tracker.add(int(m[3]))
        self.latencies.append(arrived - int(m[4]) / 1e6)
        self.last_delivery = arrived

    def _decode(self, client: _Client, data: str | bytes) -> re.Match[str] | None:
        """The slow path: parse any frame; return the marker match of a bench message."""
        counters = self.counters
        try:
            frame = parse_server_frame(data)
        except ProtocolError:
            counters["invalid_frames"] += 1
            return None
        if isinstance(frame, Message):
            m = MARKER_RE.match(frame.text)
            if m is None:
                counters["unmarked"] += 1
            return m
        if isinstance(frame, Ack):
            counters["acks"] += 1
        elif isinstance(frame, ErrorFrame):
            counters[f"error:{frame.code}"] += 1
        elif not isinstance(frame, Welcome):
            counters[f"other:{type_name(frame)}"] += 1
        return None

    async def quiet(self, period: float, timeout: float) -> dict[str, float]:
        """Wait until no frame has arrived for ``period`` seconds (the server finished what
        connecting set off, e.g. presence), at most ``timeout``; return the seconds waited
        and the frames received since the connections opened."""
        started = time.time()
        while time.time() - started < timeout:
            if time.time() - self.last_frame >= period:
                break
            await asyncio.sleep(period / 5)
        return {"waited": time.time() - started, "frames": self.frames}

    # ------------------------------------------------------------------ one step

    async def send(
        self, step: int, rate: float, duration: float, start_at: float, size: int
    ) -> dict[str, Any]:
        """Reset the step's records, send from every local sender at ``rate`` msg/s from wall
        time ``start_at`` for ``duration`` seconds; return how many each sender sent."""
        self.step = step
        del self.latencies[:]  # cleared in place: the receive loops hold references
        self.counters.clear()
        self.sent = {}
        self.send_lag = 0.0
        self.last_delivery = 0.0
        for c in self.clients:
            c.trackers.clear()
        in_rooms = [c for c in self.clients if c.open and c.spec.room >= 0]
        self.receivers = [c for c in in_rooms if not c.spec.write_only]
        senders = [c for c in in_rooms if c.spec.sender]
        cpu_task = asyncio.create_task(self._measure_cpu(start_at, start_at + duration))
        await asyncio.gather(
            *(
                self._sender(c, step, rate, duration, start_at, size, i, len(senders))
                for i, c in enumerate(senders)
            )
        )
        await cpu_task
        return {"sent": dict(self.sent), "send_lag": self.send_lag}

    async def _measure_cpu(self, start: float, end: float) -> None:
        await asyncio.sleep(max(0.0, start - time.time()))
        cpu0, wall0 = time.process_time(), time.time()
        await asyncio.sleep(max(0.0, end - time.time()))
        cpu1, wall1 = time.process_time(), time.time()
        self._cpu = (cpu1 - cpu0, wall1 - wall0)

    async def _sender(
        self,
        c: _Client,
        step: int,
        rate: float,
        duration: float,
        start_at: float,
        size: int,
        slot: int,
        slots: int,
    ) -> None:
        sid = c.spec.index
        interval = 1.0 / rate
        count = math.floor(duration * rate + 1e-9)
        # Spread this worker's senders over the interval instead of firing them together.
        first = start_at + interval * (slot / max(1, slots))
        self.sent[sid] = 0
        ws = c.ws
        assert ws is not None  # a sender's
        for seq in range(count):
            delay = first + seq * interval - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > self.send_lag:
                self.send_lag = -delay
            sent_us = int(time.time() * 1e6)
            text = make_text(step, sid, seq, sent_us, size)
            self.sent[sid] = seq + 1
            try:
                await ws.send(SendMessage(text, client_id=f"b{step}.{seq}").frame())
            except ConnectionClosed:
                self.counters["send_failures"] += 1
                return

    async def drain(self, sent: dict[int, int], deadline: float) -> dict[str, Any]:
        """Wait until every local receiver has every message its room's senders sent and
        every local sender has its answers (acks or errors), or until wall time
        ``deadline``; return this step's records."""
        room_senders: dict[int, list[tuple[int, int]]] = {}
        for sid, n in sent.items():
            room_senders.setdefault(self.sender_rooms[sid], []).append((sid, n))
        receivers = self.receivers
        counters = self.counters
        while time.time() < deadline:
            answered = counters["acks"] + sum(
                n for name, n in counters.items() if name.startswith("error:")
            )
            if answered >= sum(self.sent.values()) and all(
                not c.open or self._complete(c, room_senders.get(c.spec.room, ()))
                for c in receivers
            ):
                break
            await asyncio.sleep(0.05)
        pairs = [
            PairCounts(c.spec.index, s, *t.snapshot())
            for c in receivers
            for s, t in c.trackers.items()
        ]
        cpu, wall = self._cpu
        return {
            "receivers": [c.spec.index for c in receivers],
            "dropped_receivers": [c.spec.index for c in receivers if not c.open],
            "pairs": pairs,
            "latencies": self.latencies.tobytes(),
            "counters": dict(self.counters),
            "last_delivery": self.last_delivery,
            "cpu": cpu / wall if wall > 0 else 0.0,
        }

    @staticmethod
    def _complete(c: _Client, senders: Any) -> bool:
        for sid, n in senders:
            t = c.trackers.get(sid)
            if t is None:
                if n:
                    return False
                continue
            if t.high < n or t.missing:
                return False
        return True

    async def close(self) -> dict[str, Any]:
        self.step = -1
        for c in self.clients:
            if c.raw is not None:
                c.raw.close()
        await asyncio.gather(
            *(c.ws.close() for c in self.clients if c.ws is not None),
            *(c.raw.closed for c in self.clients if c.raw is not None),
            return_exceptions=True,
        )
        for c in self.clients:
            if c.task is not None:
                c.task.cancel()
        return {}
