"""Several real ``chatctl serve`` processes on one real redis-server, real websockets clients.

Every wait is on a frame (or a process event), never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.curl import curl_stream
from support.helpers import (
    RedisServer,
    ServeProcess,
    client,
    make_token,
    recv_json,
    recv_messages,
    recv_presence,
    recv_type,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

#: Seconds a killed node's connections stay in the user list (the hidden test option).
PRESENCE_TTL = 2.0


def start_nodes(redis: RedisServer, n: int) -> list[ServeProcess]:
    args = ("--redis-url", redis.url, "--presence-ttl", str(PRESENCE_TTL), "--redis-prefix", "e2e")
    return [ServeProcess(*args).start() for _ in range(n)]


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def nodes(redis: RedisServer) -> Iterator[list[ServeProcess]]:
    procs = start_nodes(redis, 2)
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


async def send_and_wait(ws: ClientConnection, text: str, client_id: str) -> dict[str, Any]:
    """Send one message; return its ack or error frame (other frames are skipped)."""
    await ws.send(f'{{"type":"message","message":"{text}","client_id":"{client_id}"}}')
    while True:
        frame = await recv_json(ws)
        if frame["type"] in ("ack", "error") and frame.get("client_id") == client_id:
            return frame


async def drain(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def wait_presence(ws: ClientConnection, user: str, event: str, timeout: float = 10) -> None:
    """Read frames until the presence event ``event`` of ``user`` arrives (alone or batched)."""
    async with asyncio.timeout(timeout):
        while (user, event) not in await recv_presence(ws, timeout):
            pass


async def test_cross_node_delivery_same_ids_same_order(nodes: list[ServeProcess]) -> None:
    a, b = nodes
    async with AsyncExitStack() as stack:
        receivers = [
            await stack.enter_async_context(client(node.port, "lobby", f"r{i}-{node.port}"))
            for node in (a, b)
            for i in range(2)
        ]
        senders = [
            await stack.enter_async_context(client(node.port, "lobby", f"s-{node.port}"))
            for node in (a, b)
        ]
        for ws in receivers + senders:
            await recv_type(ws, "welcome")

        async def send_all(ws: ClientConnection, tag: str) -> list[int]:
            return [(await send_and_wait(ws, f"{tag}{i}", f"{tag}{i}"))["id"] for i in range(30)]

        acked = await asyncio.gather(send_all(senders[0], "a"), send_all(senders[1], "b"))
        seen = [[(m["id"], m["message"]) for m in await recv_messages(ws, 60)] for ws in receivers]
    assert sorted(acked[0] + acked[1]) == list(range(1, 61))
    assert [i for i, _ in seen[0]] == list(range(1, 61))
    assert all(s == seen[0] for s in seen)  # same order, same ids, on both nodes


async def test_resume_on_another_node_gets_exactly_what_was_missed(
    nodes: list[ServeProcess],
) -> None:
    a, b = nodes
    async with client(b.port, "room", "sender") as sender:
        await recv_type(sender, "welcome")
        async with client(a.port, "room", "reader") as reader:
            welcome = await recv_type(reader, "welcome")
            for i in range(5):
                await send_and_wait(sender, f"m{i}", f"c{i}")
            last = (await recv_messages(reader, 5))[-1]["id"]
        for i in range(5, 9):
            await send_and_wait(sender, f"m{i}", f"c{i}")
        async with client(b.port, "room", "reader", since=last, epoch=welcome["epoch"]) as again:
            resumed = await recv_type(again, "welcome")
            assert resumed["recovered"] is True
            assert [m["message"] for m in resumed["history"]] == ["m5", "m6", "m7", "m8"]
            await send_and_wait(sender, "live", "c-live")
            (live,) = await recv_messages(again, 1)
            assert live["message"] == "live" and live["id"] == resumed["last_id"] + 1


async def test_duplicate_client_id_across_nodes(nodes: list[ServeProcess]) -> None:
    a, b = nodes
    async with (
        client(b.port, "room", "watcher") as watcher,
        client(a.port, "room", "alice") as on_a,
        client(b.port, "room", "alice") as on_b,
    ):
        for ws in (watcher, on_a, on_b):
            await recv_type(ws, "welcome")
        first = await send_and_wait(on_a, "hello", "same-id")
        again = await send_and_wait(on_b, "hello", "same-id")
        assert first["duplicate"] is False and again["duplicate"] is True
        assert again["id"] == first["id"]
        await send_and_wait(on_b, "marker", "marker-id")
        got = await recv_messages(watcher, 2)
        assert [m["message"] for m in got] == ["hello", "marker"]


async def test_presence_across_nodes_and_a_killed_node(redis: RedisServer) -> None:
    a, c = start_nodes(redis, 2)
    try:
        async with AsyncExitStack() as stack:
            bob = await stack.enter_async_context(client(a.port, "room", "bob"))
            await recv_type(bob, "welcome")
            alice = await stack.enter_async_context(client(c.port, "room", "alice"))
            welcome = await recv_type(alice, "welcome")
            assert welcome["users"] == ["alice", "bob"]
            await wait_presence(bob, "alice", "join")
            await send_and_wait(bob, "before", "b1")
            last = (await recv_messages(alice, 1))[0]["id"]

            c.kill()  # SIGKILL: no goodbye, alice's entry must expire
            killed_at = time.monotonic()
            await wait_presence(bob, "alice", "leave", timeout=30)
            assert time.monotonic() - killed_at < 4 * PRESENCE_TTL
            await bob.send('{"type":"who"}')
            assert (await recv_type(bob, "who"))["users"] == ["bob"]

            # alice's client reconnects to the surviving node and misses nothing
            await send_and_wait(bob, "while away", "b2")
            async with client(a.port, "room", "alice", since=last, epoch=welcome["epoch"]) as back:
                resumed = await recv_type(back, "welcome")
                assert resumed["recovered"] is True
                assert [m["message"] for m in resumed["history"]] == ["while away"]
    finally:
        a.stop()
        c.stop()


async def test_redis_restart_mid_stream_loses_and_repeats_nothing(
    redis: RedisServer, nodes: list[ServeProcess]
) -> None:
    a, b = nodes
    acked: dict[str, int] = {}
    refused: set[str] = set()
    async with AsyncExitStack() as stack:
        readers = [
            await stack.enter_async_context(client(n.port, "stream", f"reader-{n.port}"))
            for n in (a, b)
        ]
        senders = [
            await stack.enter_async_context(client(n.port, "stream", f"sender-{n.port}"))
            for n in (a, b)
        ]
        for ws in readers + senders:
            await recv_type(ws, "welcome")
        outage = asyncio.Event()
        refusals = {"a": asyncio.Event(), "b": asyncio.Event()}
        over = asyncio.Event()

        async def sender(ws: ClientConnection, tag: str) -> None:
            # a refused message is sent again before any later one (docs/protocol.md,
            # "Order": the node would hold the later ones back until it comes)
            i, errors, again = 0, 0, None
            # never stops with a refused message not yet sent again: the node holds every
            # later one of this connection until it comes (docs/protocol.md, "Order")
            while again is not None or not over.is_set() or errors < 3 or len(acked) < 120:
                if again is None:
                    cid = f"{tag}-{i}"
                    i += 1
                else:
                    cid = again
                frame = await send_and_wait(ws, cid, cid)
                if frame["type"] == "ack":
                    assert frame["duplicate"] is False or cid == again
                    acked[cid] = frame["id"]
                    again = None
                    if len(acked) >= 40:
                        outage.set()
                else:
                    assert frame["code"] == "broker_unavailable" and "blocked_by" not in frame
                    refused.add(cid)
                    again = cid
                    errors += 1
                    if errors >= 3:
                        refusals[tag].set()

        async def operator() -> None:
            await outage.wait()
            redis.stop()
            await asyncio.sleep(1.5)  # how long Redis stays down: long enough for backoff to grow
            for event in refusals.values():  # both nodes refused messages meanwhile
                await event.wait()
            redis.start()
            over.set()

        await asyncio.gather(sender(senders[0], "a"), sender(senders[1], "b"), operator())
        # refused while node a's feed still re-subscribes (a node stores nothing it would not
        # deliver): sent again, as a client does, until acked
        while (await send_and_wait(senders[0], "the end", "end"))["type"] != "ack":  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        # read what still comes to the senders: a client that stops reading never sees the
        # server's close frame (websockets' backpressure) and waits out its close timeout
        drains = [asyncio.ensure_future(drain(ws)) for ws in senders]
        for ws in readers:
            got: list[dict[str, Any]] = []
            while not got or got[-1]["message"] != "the end":
                got.append((await recv_messages(ws, 1))[0])
            ids = [m["id"] for m in got]
            assert ids == sorted(set(ids)), "out of order or repeated"
            by_cid = {m["client_id"]: m["id"] for m in got[:-1]}
            assert {cid: by_cid.get(cid) for cid in acked} == acked, "an acked message is missing"
            # anything delivered but not acked was a refused send that Redis stored anyway
            assert set(by_cid) - set(acked) <= refused
        for task in drains:
            task.cancel()
    for node in (a, b):
        assert node.proc is not None and node.proc.poll() is None, "a node died"
        # the outage is logged once (and its end once), not once per refused message
        loud = [ln for ln in node.read_log().splitlines() if " INFO " not in ln]
        assert len(loud) == 1 and "Redis unavailable" in loud[0], "\n".join(loud)
        assert node.read_log().count("Redis available again") == 1


async def test_restarted_node_resumes_its_clients_without_a_gap(
    nodes: list[ServeProcess],
) -> None:
    a, b = nodes
    async with client(b.port, "room", "sender") as sender:
        await recv_type(sender, "welcome")
        async with client(a.port, "room", "reader") as reader:
            welcome = await recv_type(reader, "welcome")
            await send_and_wait(sender, "m0", "c0")
            last = (await recv_messages(reader, 1))[0]["id"]
            # SIGTERM drains: the reader is told the service restarts (1012) while we read
            await asyncio.gather(asyncio.to_thread(a.stop), drain(reader))
            assert reader.close_code == 1012
        for i in range(1, 4):
            await send_and_wait(sender, f"m{i}", f"c{i}")
        await asyncio.to_thread(a.start)  # the same port again
        async with client(a.port, "room", "reader", since=last, epoch=welcome["epoch"]) as again:
            resumed = await recv_type(again, "welcome")
            assert resumed["recovered"] is True
            assert [m["message"] for m in resumed["history"]] == ["m1", "m2", "m3"]


async def test_clients_resume_when_redis_loses_the_room() -> None:
    """A Redis without persistence restarts: ids start again from 1 under a new epoch. The
    server closes the room's connections with 1012; a client that resumes with its old id and
    epoch is told it was not recovered, and then gets the new epoch's messages."""
    redis = RedisServer(persistent=False).start()
    node = ServeProcess("--redis-url", redis.url).start()
    try:
        async with client(node.port, "room", "reader") as reader:
            welcome = await recv_type(reader, "welcome")
            async with client(node.port, "room", "sender") as sender:
                await recv_type(sender, "welcome")
                for i in range(3):
                    await send_and_wait(sender, f"old{i}", f"old{i}")
            last = (await recv_messages(reader, 3))[-1]["id"]
            await asyncio.to_thread(redis.restart)
            await drain(reader)
            assert reader.close_code == 1012
        async with client(node.port, "room", "sender") as sender:
            await recv_type(sender, "welcome")
            await send_and_wait(sender, "new0", "new0")
        async with client(
            node.port, "room", "reader", since=last, epoch=welcome["epoch"]
        ) as reader:
            again = await recv_type(reader, "welcome")
            assert again["recovered"] is False and again["epoch"] != welcome["epoch"]
            assert [(m["id"], m["message"]) for m in again["history"]] == [(1, "new0")]
    finally:
        node.stop()
        redis.cleanup()


async def test_a_node_whose_feed_missed_trimmed_messages_makes_its_clients_resume() -> None:
    """Node B's pub/sub connection is cut off (its Redis user is disabled and its clients
    killed) while node A publishes 300 messages with ``--history 5``: when B's feed catches
    up, the stream no longer holds the first of them. B used to deliver the rest as if
    nothing was missing (ids jumped; a client waiting for every id waited forever); now its
    WebSocket client is closed with 1012 before any message after the hole, its resume's
    welcome says it was not recovered, and its Server-Sent Events reader gets a ``gap``."""
    redis = RedisServer(persistent=True).start()
    admin = redis.client()
    admin.execute_command("ACL", "SETUSER", "nodeb", "on", ">pw", "~*", "&*", "+@all")
    b_url = f"redis://nodeb:pw@127.0.0.1:{redis.port}/0"
    common = ("--history", "5", "--redis-prefix", "gap")
    a = ServeProcess("--redis-url", redis.url, *common).start()
    b = ServeProcess("--redis-url", b_url, *common).start()
    try:
        async with (
            client(a.port, "room", "sender") as sender,
            client(b.port, "room", "reader") as reader,
            curl_stream(b.port, "/rooms/room/events?token=" + make_token("sse")) as stream,
        ):
            welcome = await recv_type(reader, "welcome")
            await recv_type(sender, "welcome")
            await stream.until("welcome")
            await send_and_wait(sender, "m0", "c0")
            last = (await recv_messages(reader, 1))[0]["id"]
            assert (await stream.until("message"))["id"] == last == 1
            # B's every connection to Redis is gone and cannot come back
            admin.execute_command("ACL", "SETUSER", "nodeb", "off")
            admin.execute_command("CLIENT", "KILL", "USER", "nodeb")
            for i in range(1, 301):  # pipelined: all sent, then all acks read
                await sender.send(f'{{"type":"message","message":"m{i}","client_id":"c{i}"}}')
            acks = 0
            while acks < 300:
                frame = await recv_json(sender)
                assert frame["type"] != "error", frame
                acks += frame["type"] == "ack"
            assert admin.xlen("gap:{room}:log") < 300, "nothing trimmed: no hole to find"
            admin.execute_command("ACL", "SETUSER", "nodeb", "on")
            live: list[int] = []
            with contextlib.suppress(ConnectionClosed):
                while not live:  # until B closes it, or delivers a message
                    frame = await recv_json(reader, timeout=20)
                    if frame["type"] == "message":
                        live.append(frame["id"])
            assert live == [], "delivered live after the hole (ids jumped from 1)"
            assert reader.close_code == 1012 and reader.close_reason is not None
            assert "missed" in reader.close_reason
            gap = await stream.until("gap", timeout=20)
            assert gap["after_id"] == 1 and gap["next_id"] > 2, gap
        resumed = await _resume_when_admitted(b.port, last, welcome["epoch"])
        assert resumed["recovered"] is False and resumed["last_id"] == 301
        ids = [m["id"] for m in resumed["history"]]
        assert ids and ids[0] > 2 and ids[-1] == 301, ids
    finally:
        a.stop()
        b.stop()
        redis.cleanup()


async def _resume_when_admitted(port: int, since: int, epoch: str) -> dict[str, Any]:
    """The reader's resume welcome, reconnecting as a client does while the node answers 503
    (its Redis feed may still be catching up when the test gets there)."""
    async with asyncio.timeout(20):
        while True:
            try:
                async with client(port, "room", "reader", since=since, epoch=epoch) as again:
                    return await recv_type(again, "welcome")
            except InvalidStatus as exc:
                if exc.response.status_code != 503:
                    raise
            await asyncio.sleep(0.2)
