"""A rolling restart of two nodes behind Redis, with a client sending all along, loses
nothing acked and delivers nothing twice.

Each node is drained with SIGTERM in turn (its clients get 1012 and move to the other node)
and started again. The sender keeps every unacked message and, after a reconnect, sends it
again with its original client id (the broker de-duplicates it); the listener resumes with
``since`` and ``epoch``. Runs once the Redis broker (chatctl.broker.redis) is merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import Counter
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from support.helpers import RedisServer, ServeProcess, make_token, ws_url

pytest.importorskip("chatctl.broker.redis", reason="the Redis broker is not merged yet")
pytestmark = [pytest.mark.redis, pytest.mark.slow]

ROOM = "rolling"


class Nodes:
    """Two ``chatctl serve`` processes sharing one Redis, restartable on their ports."""

    def __init__(self, redis_url: str) -> None:
        self.args = ("--redis-url", redis_url, "--drain-timeout", "5", "--rate-limit", "500")
        self.procs = [ServeProcess(*self.args).start(), ServeProcess(*self.args).start()]

    @property
    def ports(self) -> list[int]:
        return [p.port for p in self.procs]

    def restart(self, i: int) -> None:
        old = self.procs[i]
        assert old.stop(signal.SIGTERM, timeout=15) == 0, old.read_log()
        self.procs[i] = ServeProcess(*self.args, port=old.port).start()

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


async def connect_any(
    ports: list[int], start: int, user: str, **params: Any
) -> tuple[ClientConnection, int]:
    """Connect to ``ports[start]``, else the next one, until one accepts (15 s at most)."""
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    async with asyncio.timeout(15):
        i = start
        while True:
            port = ports[i % len(ports)]
            try:
                ws = await connect(ws_url(port, ROOM, **params), additional_headers=headers)
                return ws, i % len(ports)
            except (OSError, InvalidHandshake):
                i += 1
                await asyncio.sleep(0.05)


class Sender:
    """Sends ``m0, m1, …`` with client ids; after a close, re-sends every unacked one."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self.unacked: dict[str, str] = {}
        self.acked: dict[str, int] = {}  # client id -> message id
        self.reconnects: Counter[int] = Counter()
        self.done = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        node, n = 0, 0
        while True:
            ws, node = await connect_any(self.nodes.ports, node, "sender")
            reader: asyncio.Task[None] | None = None
            try:
                for cid, text in list(self.unacked.items()):  # original client ids
                    await ws.send(json.dumps({"message": text, "client_id": cid}))
                reader = asyncio.create_task(self._read(ws))
                while not stop.is_set():
                    cid, text = f"c{n}", f"m{n}"
                    self.unacked[cid] = text
                    n += 1
                    await ws.send(json.dumps({"message": text, "client_id": cid}))
                    await asyncio.sleep(0.005)
                async with asyncio.timeout(15):  # the last acks
                    while self.unacked and not reader.done():  # noqa: ASYNC110 (acks land in _read)
                        await asyncio.sleep(0.01)
                if not self.unacked:
                    reader.cancel()
                    await ws.close()
                    return
                await reader
            except ConnectionClosed as exc:
                self.reconnects[exc.rcvd.code if exc.rcvd else 1006] += 1
            finally:
                if reader is not None and not reader.done():
                    reader.cancel()
                if reader is not None:
                    with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
                        await reader
            node += 1  # the node that closed us is draining: go to the other one

    async def _read(self, ws: ClientConnection) -> None:
        async for data in ws:
            frame = json.loads(data)
            if frame["type"] == "ack":
                self.unacked.pop(frame["client_id"], None)
                self.acked[frame["client_id"]] = frame["id"]
            elif frame["type"] == "error":  # not stored: send it again when told to
                assert frame["code"] in ("broker_unavailable", "rate_limited"), frame
                cid = frame["client_id"]
                await asyncio.sleep(frame.get("retry_after") or 0.5)
                if cid in self.unacked:
                    await ws.send(json.dumps({"message": self.unacked[cid], "client_id": cid}))
        raise ConnectionClosed(ws.protocol.close_rcvd, ws.protocol.close_sent)


class Listener:
    """Reads the room; after a close, resumes from the last id with ``since`` and ``epoch``."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self.ids: list[int] = []
        self.by_client_id: Counter[str] = Counter()
        self.last_id: int | None = None
        self.epoch: str | None = None
        self.not_recovered = 0

    def _take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "message" and frame["user"] == "sender":
            self.ids.append(frame["id"])
            self.by_client_id[frame["client_id"]] += 1
            self.last_id = frame["id"]

    async def run(self, stop: asyncio.Event) -> None:
        node = 1
        while not stop.is_set():
            params = {"since": self.last_id, "epoch": self.epoch}
            ws, node = await connect_any(self.nodes.ports, node, "listener", **params)
            with contextlib.suppress(ConnectionClosed):
                while not stop.is_set():
                    try:
                        data = await asyncio.wait_for(ws.recv(), 0.2)
                    except TimeoutError:
                        continue
                    frame = json.loads(data)
                    if frame["type"] == "welcome":
                        self.epoch = frame["epoch"]
                        if frame.get("recovered") is False:
                            self.not_recovered += 1
                        for m in frame["history"]:
                            self._take(m)
                        if self.last_id is None:
                            self.last_id = frame["last_id"]
                    else:
                        self._take(frame)
            await ws.close()
            node += 1


async def test_rolling_restart_loses_nothing_acked(redis_server: RedisServer) -> None:
    nodes = Nodes(redis_server.url)
    try:
        listener, sender = Listener(nodes), Sender(nodes)
        stop_listening, stop_sending = asyncio.Event(), asyncio.Event()
        listening = asyncio.create_task(listener.run(stop_listening))
        await asyncio.sleep(0.3)
        sending = asyncio.create_task(sender.run(stop_sending))
        await asyncio.sleep(1.0)
        for i in (0, 1):  # drain and restart each node while traffic flows
            await asyncio.to_thread(nodes.restart, i)
            await asyncio.sleep(1.0)
        stop_sending.set()
        await asyncio.wait_for(sending, 30)
        async with asyncio.timeout(15):  # the listener catches up with every ack
            while not set(sender.acked) <= set(listener.by_client_id):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        stop_listening.set()
        await asyncio.wait_for(listening, 10)
    finally:
        nodes.stop()

    assert sender.reconnects[1012] >= 1  # the drains really moved the sender
    assert not sender.unacked
    missing = set(sender.acked) - set(listener.by_client_id)
    assert not missing, f"acked but never delivered: {sorted(missing)[:10]}"
    doubled = {cid: n for cid, n in listener.by_client_id.items() if n > 1}
    assert not doubled, f"delivered more than once: {doubled}"
    assert listener.ids == sorted(set(listener.ids))  # in order, no id twice
    for cid, msg_id in sender.acked.items():  # the ack's id is the id the listener saw
        assert msg_id in listener.ids, cid
    assert listener.not_recovered == 0
