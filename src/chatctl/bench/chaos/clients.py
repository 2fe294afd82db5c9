"""The receivers of a chaos schedule, each recording what it sees into the history (live,
resuming with since/epoch, joining late, paging a resume back), and what every client
connects with. The senders are in :mod:`~chatctl.bench.chaos.senders`. Every loop ends by
its deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from chatctl.bench.chaos.check import NOT_STORED
from chatctl.bench.chaos.history import (
    Connecting,
    Delivery,
    Disconnect,
    History,
    Paged,
    Welcome,
)
from chatctl.protocol import MAX_HISTORY_PAGE

_CONNECT = {"open_timeout": 3, "ping_interval": 1, "ping_timeout": 2, "close_timeout": 1}
_CONNECT |= {"max_size": 2**26, "max_queue": 4}
#: the clients' socket receive buffer, in bytes
RCVBUF = 8192
#: the clients' (and the proxies' toward the nodes) TCP maximum segment size, in bytes
MSS = 1460


class Client:
    """What receivers and raw senders share: a name (its user), a room, server URLs to pick
    from, where its tokens come from (one for each connection), and the connection a fault
    may cut."""

    def __init__(
        self,
        name: str,
        room: str,
        urls: list[str],
        token: Callable[[], str],
        history: History,
        rng: random.Random,
    ) -> None:
        self.name, self.room, self.urls, self.token = name, room, urls, token
        self.h, self.rng = history, rng
        self.ws: ClientConnection | None = None
        self.conns = 0

    def cut(self) -> bool:
        """Drop the connection mid-stream (the transport, no close frame)."""
        if self.ws is None:
            return False
        self.ws.transport.abort()
        return True

    async def _open(self, query: str) -> ClientConnection:
        url = f"{self.rng.choice(self.urls)}/ws/{self.room}?{query}"
        headers = {"Authorization": f"Bearer {self.token()}"}
        sock = await small_socket(int(url.split(":")[2].split("/")[0]))
        try:
            return await connect(url, additional_headers=headers, sock=sock, **_CONNECT)  # type: ignore[arg-type]
        except BaseException:
            sock.close()
            raise


async def small_socket(port: int) -> socket.socket:
    """A TCP socket connected to ``port`` on 127.0.0.1 as over a network, not loopback: a
    small receive window (a reader that stops soon backs the node up) and an Ethernet-sized
    MSS. Loopback's 64 KiB MSS makes the kernel give the node's end a send buffer of
    megabytes, which a stalled reader would have to fill before the node's own pending
    output, which --max-pending bounds, even starts to grow."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


#: seconds a receiver waits for the answer to one of its ``history`` requests
PAGE_TIMEOUT = 10.0


class Receiver(Client):
    """Joins (after ``delay``), records its welcome and every message; on any end of its
    connection it resumes with ``since``/``epoch`` until ``stop`` is set. A resume welcomed
    with ``more`` (its history cut to fit the node's ``--max-pending``) pages the rest back
    with ``history`` requests before it records anything (docs/protocol.md, "Resuming without
    gaps or duplicates")."""

    def __init__(self, *args: Any, delay: float = 0.0, refresh: float | None = None) -> None:
        super().__init__(*args)
        self.delay = delay
        #: send a ``refresh`` frame with a new token this often (its tokens are short-lived:
        #: a connection that misses its renewals is closed with 4001 and resumes)
        self.refresh = refresh
        self.refreshed = 0
        #: cleared while a slow_reader fault holds this receiver's reading
        self.reading = asyncio.Event()
        self.reading.set()
        self.epoch: str | None = None
        self.last_id = 0

    async def run(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.delay)
        while not stop.is_set():
            query = "history=0"
            if self.epoch is not None:
                query = f"since={self.last_id}&epoch={self.epoch}"
            self.h.add(Connecting(self.name, self.conns + 1))
            try:
                self.ws = await self._open(query)
            except (OSError, TimeoutError, Exception):  # refused, 503, a paused node…
                await asyncio.sleep(0.2 + self.rng.random() * 0.3)
                continue
            self.conns += 1
            why = "closed"
            try:
                await self._read(self.ws, stop, query)
            except Exception as exc:
                why = type(exc).__name__
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.ws.close(), 1)
                if self.ws.close_code is not None:
                    why = str(self.ws.close_code)
                self.ws = None
                self.h.add(Disconnect(self.name, self.conns, why))
            await asyncio.sleep(0.05 + self.rng.random() * 0.2)

    async def _read(self, ws: ClientConnection, stop: asyncio.Event, query: str) -> None:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        asked, asked_epoch = self.epoch is not None, self.epoch
        self.h.add(
            Welcome(
                self.name,
                self.conns,
                self.room,
                welcome["epoch"],
                welcome["last_id"],
                self.last_id if asked else None,
                self.epoch if asked else None,
                welcome.get("recovered"),
                welcome.get("more") is True,
            )
        )
        if welcome["epoch"] != self.epoch:
            self.epoch, self.last_id = welcome["epoch"], 0
        stopping = asyncio.ensure_future(stop.wait())
        renewing = asyncio.ensure_future(self._renew(ws)) if self.refresh else None
        try:
            held = welcome.get("history", [])
            live: list[dict[str, Any]] = []
            if asked and welcome.get("more") is True and welcome["epoch"] == asked_epoch:
                before = held[0]["id"] if held else welcome["last_id"] + 1
                paged = await self._page(ws, stopping, self.last_id, before, welcome["epoch"])
                if paged is None:
                    return  # cut, stopped or short: nothing recorded, resume from where it was
                held = [*paged[0], *held]
                live = paged[1]
            for frame in held:
                self._message(frame, history=True)
            for frame in live:
                self._message(frame, history=False)
            if not asked:
                self.last_id = max(self.last_id, welcome["last_id"])
            while True:
                if not self.reading.is_set():  # a slow reader: the server's output piles up
                    await asyncio.wait(
                        {asyncio.ensure_future(self.reading.wait()), stopping},
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if stopping.done():
                        return
                recv = asyncio.ensure_future(ws.recv())
                recv.add_done_callback(_retrieve)
                await asyncio.wait({recv, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not recv.done():
                    recv.cancel()
                    return
                frame = json.loads(recv.result())
                if frame.get("type") == "message":
                    self._message(frame, history=False)
                elif frame.get("type") == "refreshed":
                    self.refreshed += 1
        finally:
            stopping.cancel()
            if renewing is not None:
                renewing.cancel()

    async def _page(
        self,
        ws: ClientConnection,
        stopping: asyncio.Future[Any],
        since: int,
        before: int,
        epoch: str,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        """Page back with ``history`` requests from ``before`` to ``since + 1``: the pages'
        messages (oldest first) and the live ones that arrived meanwhile; None when the
        paging did not reach ``since + 1`` in ``epoch`` (a :class:`Paged` event says so) or
        the connection ended or ``stop`` was set first (nothing recorded)."""
        pages: list[dict[str, Any]] = []
        live: list[dict[str, Any]] = []
        more, got_epoch, n = True, epoch, 0
        while before > since + 1:
            n += 1
            cid = f"{self.name}-page-{self.conns}-{n}"
            request = {"type": "history", "before": before, "limit": MAX_HISTORY_PAGE}
            await ws.send(json.dumps({**request, "client_id": cid}))
            while True:
                frame = await self._next(ws, stopping)
                if frame is None:
                    return None
                kind = frame.get("type")
                if kind == "message":
                    live.append(frame)
                elif kind in ("history", "error") and frame.get("client_id") == cid:
                    break
            if kind == "error":  # rate_limited, broker_unavailable: ask again
                if frame.get("code") not in NOT_STORED:
                    return None
                await asyncio.sleep(min(float(frame.get("retry_after") or 0.2), 2.0))
                continue
            got_epoch, more = str(frame.get("epoch")), frame.get("more") is True
            older = [m for m in frame.get("messages", []) if since < m["id"] < before]
            if got_epoch != epoch or not older:
                break
            pages[:0] = older
            before = older[0]["id"]
            if not more:
                break
        self.h.add(Paged(self.name, self.conns, since, before, got_epoch, more))
        if before != since + 1 or got_epoch != epoch:
            return None
        return pages, live

    @staticmethod
    async def _next(ws: ClientConnection, stopping: asyncio.Future[Any]) -> dict[str, Any] | None:
        """The next frame, or None once ``stop`` is set (TimeoutError after PAGE_TIMEOUT)."""
        recv = asyncio.ensure_future(ws.recv())
        recv.add_done_callback(_retrieve)
        done, _ = await asyncio.wait(
            {recv, stopping}, timeout=PAGE_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if recv not in done:
            recv.cancel()
            if stopping.done():
                return None
            raise TimeoutError("no answer to a history request")
        frame: dict[str, Any] = json.loads(recv.result())
        return frame

    async def stall(self, seconds: float, *, keepalive: bool = True) -> bool:
        """Read nothing for ``seconds`` (False if not connected: nothing to stall). Without
        ``keepalive`` the connection does not give up on the pongs it cannot read meanwhile
        (its pings' 2 s timeout would close it before the node cuts it as a slow consumer)."""
        ws = self.ws
        if ws is None:
            return False
        if not keepalive:
            ws.ping_timeout = None
        self.reading.clear()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.reading.set()
            ws.ping_timeout = _CONNECT["ping_timeout"]
        return True

    async def _renew(self, ws: ClientConnection) -> None:
        """A fresh token in a ``refresh`` frame every ``refresh`` seconds (the answer, a
        ``refreshed`` frame or an error, is read and dropped by :meth:`_read`)."""
        assert self.refresh is not None
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.refresh)
                await ws.send(json.dumps({"type": "refresh", "token": self.token()}))

    def _message(self, f: dict[str, Any], *, history: bool) -> None:
        assert self.epoch is not None
        self.h.add(
            Delivery(
                self.name,
                self.conns,
                f["room"],
                f["id"],
                self.epoch,
                f["message"],
                f["user"],
                f.get("client_id"),
                history,
            )
        )
        self.last_id = max(self.last_id, f["id"])


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a finished receive's exception as seen (it is handled, or the connection ended)."""
    if not future.cancelled():
        future.exception()


Cutter = Callable[[], bool]

__all__ = ["Client", "Receiver", "small_socket"]
