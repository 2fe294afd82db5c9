"""GET /rooms/{room}/events: Server-Sent Events followed with the real ``curl -N``, resumed
with ``Last-Event-ID`` without a gap or a duplicate."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chatctl.server import ChatServer
from support.curl import curl, curl_stream
from support.helpers import client, make_token, recv_presence, recv_type, timed_token

EVENTS = "/rooms/general/events"
MESSAGES = "/rooms/general/messages"


async def test_events_stream_and_resume_with_last_event_id(server: ChatServer) -> None:
    alice, bob = make_token("alice"), make_token("bob")
    auth = ("-H", f"Authorization: Bearer {bob}")
    async with curl_stream(server.port, EVENTS, *auth) as stream:
        welcome = await stream.until("welcome")
        assert welcome["room"] == "general" and welcome["recovered"] is None
        assert "bob" in welcome["users"]
        for text in ("one", "two"):
            await curl(server.port, MESSAGES, "-d", text, token=alice)
        one, two = await stream.until("message"), await stream.until("message")
        assert (one["message"], two["message"]) == ("one", "two")
        epoch = welcome["epoch"]
        assert (one["_id"], two["_id"]) == (f"{epoch}:1", f"{epoch}:2")
    # gone; the room goes on; back with the last id it saw, as an EventSource would
    for text in ("three", "four"):
        await curl(server.port, MESSAGES, "-d", text, token=alice)
    resume = ("-H", f"Last-Event-ID: {two['_id']}")
    async with curl_stream(server.port, EVENTS, *auth, *resume) as stream:
        welcome = await stream.until("welcome")
        assert welcome["recovered"] is True and welcome["since"] == 2
        missed = [await stream.until("message"), await stream.until("message")]
        assert [m["message"] for m in missed] == ["three", "four"]
        await curl(server.port, MESSAGES, "-d", "five", token=alice)
        assert (await stream.until("message"))["message"] == "five"  # not four again


async def test_a_last_event_id_of_another_epoch_is_not_recovered(server: ChatServer) -> None:
    await curl(server.port, MESSAGES, "-d", "only", token=make_token("alice"))
    stale = ("-H", "Last-Event-ID: 0123abcd:7")
    async with curl_stream(server.port, EVENTS + "?token=" + make_token("bob"), *stale) as s:
        welcome = await s.until("welcome")
        assert welcome["recovered"] is False
        first = await s.until("message")
        assert first["message"] == "only" and first["_id"] == f"{welcome['epoch']}:1"


async def test_presence_reaches_the_stream(server: ChatServer) -> None:
    from support.helpers import client, recv_type

    async with curl_stream(server.port, EVENTS + "?token=" + make_token("bob")) as stream:
        await stream.until("welcome")
        async with client(server.port, "general", "carol") as carol:
            await recv_type(carol, "welcome")
            event = await stream.until("presence")  # not bob's own join: the welcome said it
            assert (event["user"], event["event"]) == ("carol", "join")


async def test_events_refuse_a_token_for_other_rooms(server: ChatServer) -> None:
    answer = await curl(server.port, EVENTS, token=make_token("bob", rooms=["ops"]))
    assert answer.status == 403 and answer.json()["code"] == "forbidden"


async def test_a_stream_ends_when_its_token_expires(leeway_server: ChatServer) -> None:
    token = timed_token("bob", 1.0)
    async with curl_stream(leeway_server.port, EVENTS + "?token=" + token) as stream:
        await stream.until("welcome")
        expired = await stream.until("expired", timeout=10)  # exp + the 0.5 s leeway
        assert expired["type"] == "expired" and "new one" in expired["reason"]
        assert await stream.proc.wait() == 0  # the server ended the stream
    again = await curl(leeway_server.port, EVENTS, token=token)
    assert again.status == 401


async def _open_raw_stream(port: int, token: str) -> tuple[asyncio.StreamReader, Any]:
    """A Server-Sent Events request on a raw socket, read up to its ``welcome`` event."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET {EVENTS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    await writer.drain()
    async with asyncio.timeout(10):
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        await reader.readuntil(b"event: welcome\n")
    return reader, writer


@pytest.mark.parametrize("how", ["close", "shutdown"])
async def test_a_closed_reader_leaves_the_room_at_once(server: ChatServer, how: str) -> None:
    """The client's close (or its half-close, EOF) ends the stream: the reader is no longer
    listed, the room's members get its leave, its connection no longer counts; not once a
    write to it fails (a keep-alive comment, 15 s in a quiet room)."""
    async with client(server.port, "general", "carol") as carol:
        await recv_type(carol, "welcome")
        _, writer = await _open_raw_stream(server.port, make_token("bob"))
        assert await recv_presence(carol) == [("bob", "join")]
        started = time.monotonic()
        if how == "close":
            writer.close()
        else:
            writer.write_eof()
        assert await recv_presence(carol, timeout=2) == [("bob", "leave")]
        users = await curl(server.port, "/rooms/general/users", token=make_token("dave"))
        assert users.json()["users"] == ["carol"]
        assert time.monotonic() - started < 2
        metrics = (await curl(server.port, "/metrics")).body.decode()
        assert 'route="room_events",status="200"} 1' in metrics
        assert server.limits.total == 1  # carol's: the stream no longer counts
        if how == "shutdown":
            writer.close()
