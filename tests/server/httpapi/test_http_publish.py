"""POST /rooms/{room}/messages with the real curl: the message reaches WebSocket members,
acks, de-duplication, and the errors of the protocol as JSON."""

from __future__ import annotations

import asyncio
import json

import pytest

from chatctl.server import ChatServer
from chatctl.server.limits import RateSettings
from support.curl import curl
from support.helpers import client, make_server, make_token, recv_type

MESSAGES = "/rooms/general/messages"


async def test_curl_d_publishes_to_websocket_members(server: ChatServer) -> None:
    async with client(server.port, "general", "bob") as bob:
        await recv_type(bob, "welcome")
        answer = await curl(server.port, MESSAGES, "-d", "backup done", token=make_token("alice"))
        assert answer.status == 201
        ack = answer.json()
        assert ack["type"] == "ack" and ack["room"] == "general" and ack["duplicate"] is False
        msg = await recv_type(bob, "message")
        assert (msg["user"], msg["message"], msg["id"]) == ("alice", "backup done", ack["id"])


async def test_a_json_body_carries_client_id_and_kind(server: ChatServer) -> None:
    body = json.dumps({"message": "waves", "client_id": "c-1", "kind": "action"})
    args = ("-H", "Content-Type: application/json", "-d", body)
    first = await curl(server.port, MESSAGES, *args, token=make_token("alice"))
    again = await curl(server.port, MESSAGES, *args, token=make_token("alice"))
    assert first.status == 201 and first.json()["client_id"] == "c-1"
    assert again.status == 200 and again.json() == {**first.json(), "duplicate": True}
    history = await curl(server.port, MESSAGES, token=make_token("alice"))
    [stored] = history.json()["messages"]
    assert stored["kind"] == "action"


async def test_idempotency_key_deduplicates(server: ChatServer) -> None:
    token = make_token("alice")
    args = ("-H", "Idempotency-Key: nightly-42", "-d", "report ready")
    first = await curl(server.port, MESSAGES, *args, token=token)
    second = await curl(server.port, MESSAGES, *args, token=token)
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["duplicate"] is True
    assert len((await curl(server.port, MESSAGES, token=token)).json()["messages"]) == 1


async def test_token_and_room_are_checked_before_the_body(server: ChatServer) -> None:
    missing = await curl(server.port, MESSAGES, "-d", "x")
    assert missing.status == 401 and missing.json()["code"] == "invalid_token"
    bad = await curl(server.port, MESSAGES, "-d", "x", token="nope")
    assert bad.status == 401
    other = make_token("alice", rooms=["ops-*"])
    forbidden = await curl(server.port, MESSAGES, "-d", "x", token=other)
    assert forbidden.status == 403 and forbidden.json()["code"] == "forbidden"
    # refused before the body: a huge declared body is never waited for
    huge = await curl(
        server.port, MESSAGES, "-H", "Content-Length: 100000000", "-d", "x", token=other
    )
    assert huge.status == 403


async def test_errors_are_json_with_the_protocol_codes() -> None:
    srv = make_server(max_message_chars=10)
    async with srv:
        token = make_token("alice")
        long = await curl(srv.port, MESSAGES, "-d", "x" * 11, token=token)
        assert long.status == 413 and long.json()["code"] == "message_too_long"
        blank = await curl(srv.port, MESSAGES, "-d", "  ", token=token)
        assert blank.status == 400 and blank.json()["code"] == "invalid_field"
        room = await curl(srv.port, "/rooms/-bad-/messages", "-d", "x", token=token)
        assert room.status == 400
        args = ("-H", "Content-Type: application/json", "-d", "{nope")
        assert (await curl(srv.port, MESSAGES, *args, token=token)).json()["code"] == "invalid_json"
        gone = await curl(srv.port, "/nowhere", "-d", "x", token=token)
        assert gone.status == 404 and gone.json()["code"] == "not_found"
        put = await curl(srv.port, MESSAGES, "-X", "PUT", "-d", "x", token=token)
        assert put.status == 405 and put.headers["allow"] == "GET, POST, HEAD"
        head = await curl(srv.port, MESSAGES, "-I", token=token)
        assert head.status == 200 and head.body == b""
        assert int(head.headers["content-length"]) > 0


async def test_over_the_user_rate_is_429_with_retry_after() -> None:
    srv = make_server(rates=RateSettings(user_rate=1.0, user_burst=2.0))
    async with srv:
        token = make_token("alice")
        statuses = [(await curl(srv.port, MESSAGES, "-d", "m", token=token)) for _ in range(3)]
        assert [r.status for r in statuses] == [201, 201, 429]
        assert statuses[2].json()["code"] == "rate_limited"
        assert int(statuses[2].headers["retry-after"]) >= 1


async def test_broker_unavailable_is_503_and_nothing_is_stored(server: ChatServer) -> None:
    from chatctl.errors import BrokerUnavailable

    async def down(*args: object, **kwargs: object) -> None:
        raise BrokerUnavailable("down for the test")

    real = server.broker.publish
    server.broker.publish = down  # type: ignore[method-assign,assignment]
    try:
        answer = await curl(server.port, MESSAGES, "-d", "lost?", token=make_token("alice"))
    finally:
        server.broker.publish = real  # type: ignore[method-assign]
    assert answer.status == 503 and answer.json()["code"] == "broker_unavailable"
    assert int(answer.headers["retry-after"]) >= 1
    history = await curl(server.port, MESSAGES, token=make_token("alice"))
    assert history.json()["messages"] == []


async def test_keep_alive_serves_several_requests_on_one_connection(server: ChatServer) -> None:
    auth = f"Authorization: Bearer {make_token('alice')}"
    url = f"http://127.0.0.1:{server.port}{MESSAGES}"
    answer = await curl(
        server.port,
        MESSAGES,
        *("-H", auth, "-d", "one", url, "--next", "-s", "-i", "-H", auth, "-d", "two"),
        *("-w", "connects=%{num_connects}"),
    )
    assert answer.status == 201 and b"HTTP/1.1 201 Created" in answer.body
    assert answer.body.endswith(b"connects=0")  # the second request reused the connection
    history = (await curl(server.port, MESSAGES, "-H", auth)).json()
    assert [m["message"] for m in history["messages"]] == ["one", "two"]


async def test_expect_100_continue_is_answered_before_the_body(server: ChatServer) -> None:
    import asyncio

    token = make_token("alice")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"POST {MESSAGES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    async with asyncio.timeout(10):
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created")
    writer.close()


@pytest.mark.parametrize("path", ["/rooms/general/nowhere", "/api/nowhere"])
async def test_a_404_keeps_the_connection_alive(server: ChatServer, path: str) -> None:
    """A request without a body for no route is answered 404 and the connection serves the
    next request (it used to be closed, as after a refused body)."""
    token = make_token("alice")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for target, status in ((path, "404"), ("/rooms", "200"), (path, "404")):
            auth = f"Authorization: Bearer {token}"
            writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n{auth}\r\n\r\n".encode())
            async with asyncio.timeout(10):
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                assert head.startswith(f"http/1.1 {status}"), head
                assert "connection: close" not in head
                length = int(head.split("content-length:")[1].split("\r\n")[0])
                await reader.readexactly(length)
    finally:
        writer.close()


@pytest.mark.parametrize(("first", "status"), [("/rooms", 200), ("/rooms/general/nowhere", 404)])
async def test_a_websockets_page_after_an_api_request_on_one_connection(
    server: ChatServer, first: str, status: int
) -> None:
    """GET /healthz sent on a connection kept alive after an API request is not the API's:
    the connection is closed unanswered, curl repeats it on a new one and websockets answers
    200 (it used to be a 405 "use GET, HEAD" to a GET)."""
    answer = await curl(
        server.port,
        "/healthz",
        *("-H", f"Authorization: Bearer {make_token('alice')}"),
        f"http://127.0.0.1:{server.port}{first}",
        *("--next", "-s", "-i", "-w", "connects=%{num_connects}"),
    )
    assert answer.status == status
    second = answer.body.split(b"HTTP/1.1 ", 1)[1]
    assert second.startswith(b"200") and second.endswith(b"connects=1")
