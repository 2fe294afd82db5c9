"""Two real ``chatctl serve`` nodes on a real Redis Cluster, a real ``chatctl send`` process
sending a steady stream through one node, a websockets receiver on the other: the room's slot
is moved with ``redis-cli --cluster reshard`` and then its master is killed, and the receiver
gets every acked message exactly once, in order."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection

from support.client_helpers import client_env
from support.cluster_helpers import LocalCluster, room_in_slot, slot_of
from support.helpers import ServeProcess, client, recv_json, recv_type

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster(masters=3, replicas=1).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


class Lines:
    """Feeds ``chatctl send``'s stdin one numbered line every ``interval`` seconds."""

    def __init__(self, proc: subprocess.Popen[str], interval: float = 0.01) -> None:
        self.proc = proc
        self.interval = interval
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.proc.stdin is not None
        while not self.stop.is_set():
            self.proc.stdin.write(f"line {self.sent}\n")
            self.proc.stdin.flush()
            self.sent += 1
            time.sleep(self.interval)  # pacing a steady stream, not synchronisation
        # stdin is left open: communicate() flushes and closes it (closing it here too raced
        # with communicate's flush: "I/O operation on closed file")


def start_send(port: int, room: str) -> subprocess.Popen[str]:
    """``chatctl send ROOM`` reading lines from a pipe, one message in flight at a time (so
    that ids follow the lines), printing each ack as JSON."""
    return subprocess.Popen(
        [sys.executable, "-m", "chatctl", "send", room, "--json", "--window", "1"],
        env=client_env(port, "alice"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def collect(ws: ClientConnection, frames: list[dict[str, object]]) -> None:
    while True:
        frame = await recv_json(ws, timeout=60)
        if frame["type"] == "message":
            frames.append(frame)


async def test_reshard_then_failover_under_a_steady_stream(cluster: LocalCluster) -> None:
    master = cluster.master_ports()[0]
    target = cluster.master_ports()[1]
    room = room_in_slot(cluster.first_slot(master))
    args = ("--redis-url", cluster.url, "--redis-wait-replicas", "1", "--rate-limit", "0")
    sender_node, receiver_node = ServeProcess(*args).start(), ServeProcess(*args).start()
    received: list[dict[str, object]] = []
    try:
        async with client(receiver_node.port, room, "bob") as ws:
            await recv_type(ws, "welcome")
            reader = asyncio.create_task(collect(ws, received))
            send = start_send(sender_node.port, room)
            lines = Lines(send)

            async def until(count: int) -> None:
                async with asyncio.timeout(60):
                    while len(received) < count:  # noqa: ASYNC110 - the reader task fills it
                        await asyncio.sleep(0.02)

            await until(50)
            await asyncio.to_thread(cluster.reshard, master, target)  # the room's slot moves
            assert cluster.master_of_slot(slot_of(room)) == target
            await until(len(received) + 50)
            await asyncio.to_thread(cluster.fail_master, target)  # and its new master dies
            await asyncio.to_thread(cluster.node(target).start)  # back, as a replica
            await asyncio.to_thread(cluster.wait_healthy)
            await until(len(received) + 50)
            lines.stop.set()
            await asyncio.to_thread(lines.thread.join)
            out, err = await asyncio.to_thread(send.communicate, timeout=60)
            assert send.returncode == 0, err
            acks = [json.loads(line) for line in out.splitlines()]
            assert len(acks) == lines.sent
            await until(lines.sent)
            reader.cancel()
        ids = [m["id"] for m in received]
        assert ids == list(range(1, len(ids) + 1)), "a gap, a repeat or a re-order"
        assert [m["message"] for m in received] == [f"line {i}" for i in range(lines.sent)]
        assert [a["id"] for a in acks] == ids
        # the receiver's node followed the room: to the reshard's target, then to the
        # replica that took over from it, either by moving the room to that node's link or,
        # when the failover was seen as the cluster going away, by re-subscribing every room
        log = receiver_node.read_log()
        moves = log.count("now subscribed on the Redis Cluster node")
        assert moves >= 1, log
        assert moves >= 2 or "rooms re-subscribed and caught up" in log, log
    finally:
        sender_node.stop()
        receiver_node.stop()
