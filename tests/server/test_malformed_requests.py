"""Malformed requests from anyone, no token needed, against a real ``chatctl serve``: never a
500, never a traceback in its log, and the server keeps serving (issue 22, item 5)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import Iterator

import pytest
from websockets.frames import Frame, Opcode

from support.harden_helpers import raw_exchange, status_of
from support.helpers import ServeProcess, client, make_token, recv_type

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
UPGRADE = (
    f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
    "Sec-WebSocket-Version: 13\r\n"
)
#: placeholders: {host} the Host header line, {auth} a valid Authorization line, {up} UPGRADE
HEALTH = "GET /healthz HTTP/1.1\r\n{host}\r\n"
WS = "GET /ws/lobby{query} HTTP/1.1\r\n{host}{up}{auth}\r\n"
CLOSED = None  # the server closed the connection without an answer (websockets' way)

#: name -> (request bytes, or several writes; the first response's allowed statuses)
CORPUS: dict[str, tuple[str | list[str], set[int | None]]] = {
    # duplicate and missing headers (RFC 9112 3.2)
    "two Authorization": (WS.replace("{auth}", "{auth}{auth}"), {400}),
    "two Host on /ws": (WS.replace("{host}", "{host}{host}"), {400}),
    "two Host on /healthz": (HEALTH.replace("{host}", "{host}{host}"), {400}),
    "Host and host": (HEALTH.replace("{host}", "{host}host: example.com\r\n"), {400}),
    "no Host in HTTP/1.1": ("GET /healthz HTTP/1.1\r\n\r\n", {400}),
    "no Host in HTTP/1.0": ("GET /healthz HTTP/1.0\r\n\r\n", {200}),
    "empty Host": ("GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", {200, 400}),
    "two Origin": (WS.replace("{auth}", "{auth}Origin: http://a\r\nOrigin: http://b\r\n"), {403}),
    "Origin null": (WS.replace("{auth}", "{auth}Origin: null\r\n"), {403}),
    # pipelining
    "two pipelined GET /healthz": (HEALTH + HEALTH, {200}),
    "three pipelined, one a handshake": (WS.replace("{up}", "") + HEALTH + HEALTH, {426}),
    "pipelined garbage": (HEALTH + "\x00\xff GARBAGE\r\n\r\n", {200}),
    "pipelined after a head split in two reads": (
        [HEALTH[:-1], "\n" + HEALTH],
        {200},
    ),
    "pipelined while the answer is pending": ([HEALTH, HEALTH, HEALTH], {200}),
    # request lines
    "garbage": ("GARBAGE\r\n\r\n", {CLOSED}),
    "no version": ("GET /healthz\r\n\r\n", {CLOSED}),
    "HTTP/2.0": ("GET /healthz HTTP/2.0\r\n{host}\r\n", {CLOSED}),
    "HTTP/0.9": ("GET /healthz\n", {CLOSED}),
    "empty request": ("\r\n\r\n", {CLOSED}),
    "two spaces": ("GET  /healthz HTTP/1.1\r\n{host}\r\n", {CLOSED, 400, 404}),
    "NUL in the target": ("GET /heal\x00thz HTTP/1.1\r\n{host}\r\n", {CLOSED, 400, 404}),
    "non-ASCII target": ("GET /ws/caf\xe9 HTTP/1.1\r\n{host}{up}{auth}\r\n", {CLOSED, 400}),
    "LF line ends": ("GET /healthz HTTP/1.1\n{host_lf}\n", {CLOSED}),
    "request line of 9 KB": ("GET /" + "a" * 9000 + " HTTP/1.1\r\n{host}\r\n", {414}),
    "lower-case method": ("get /healthz HTTP/1.1\r\n{host}\r\n", {405, 404, CLOSED}),
    # headers
    "header of 9 KB": (HEALTH.replace("{host}", "{host}X-Big: " + "a" * 9000 + "\r\n"), {431}),
    "200 headers": (HEALTH.replace("{host}", "{host}" + "X-A: b\r\n" * 200), {431}),
    "header without colon": (HEALTH.replace("{host}", "{host}NoColon\r\n"), {CLOSED, 400}),
    "space before colon": (HEALTH.replace("{host}", "{host}X-A : b\r\n"), {CLOSED, 400}),
    "folded header": (HEALTH.replace("{host}", "{host}X-A: b\r\n c\r\n"), {CLOSED, 400}),
    "binary header value": (HEALTH.replace("{host}", "{host}X-A: \x00\x7f\xff\r\n"), {CLOSED, 400}),
    "chunked GET": (
        HEALTH.replace("{host}", "{host}Transfer-Encoding: chunked\r\n") + "0\r\n\r\n",
        {CLOSED, 400, 501},
    ),
    "GET with a body": (
        HEALTH.replace("{host}", "{host}Content-Length: 5\r\n") + "hello",
        {CLOSED, 400},
    ),
    "two Content-Length": (
        HEALTH.replace("{host}", "{host}Content-Length: 0\r\nContent-Length: 5\r\n"),
        {CLOSED, 400},
    ),
    # the upgrade
    "no upgrade headers": (WS.replace("{up}", ""), {426}),
    "Upgrade: h2c": (WS.replace("{up}", UPGRADE.replace("websocket", "h2c")), {400, 426}),
    "Connection: close": (WS.replace("{up}", UPGRADE.replace(": Upgrade", ": close")), {400, 426}),
    "version 12": (WS.replace("{up}", UPGRADE.replace(": 13", ": 12")), {400, 426}),
    "two versions": (
        WS.replace("{up}", UPGRADE + "Sec-WebSocket-Version: 8\r\n"),
        {400, 426},
    ),
    "no key": (WS.replace("{up}", UPGRADE.replace(f"Sec-WebSocket-Key: {KEY}\r\n", "")), {400}),
    "bad key": (WS.replace("{up}", UPGRADE.replace(KEY, "abc")), {400}),
    "two keys": (WS.replace("{up}", UPGRADE + f"Sec-WebSocket-Key: {KEY}\r\n"), {400}),
    # methods
    "POST /ws/lobby": (WS.replace("GET", "POST", 1), {405}),
    "TRACE /ws/lobby": (WS.replace("GET", "TRACE", 1), {405}),
    "DELETE /healthz": (HEALTH.replace("GET", "DELETE", 1), {405}),
    "PUT /": ("PUT / HTTP/1.1\r\n{host}\r\n", {405}),
    "OPTIONS *": ("OPTIONS * HTTP/1.1\r\n{host}\r\n", {404, 405}),
    "CONNECT": ("CONNECT 127.0.0.1:443 HTTP/1.1\r\n{host}\r\n", {400, 404, 405}),
    # targets and query strings
    "target //[": ("GET //[x HTTP/1.1\r\n{host}\r\n", {400}),
    "absolute target with a bad IPv6": ("GET http://[::1/ws/lobby HTTP/1.1\r\n{host}\r\n", {400}),
    "target *": ("GET * HTTP/1.1\r\n{host}\r\n", {404}),
    "target without a slash": ("GET healthz HTTP/1.1\r\n{host}\r\n", {404}),
    "since=abc": (WS.replace("{query}", "?since=abc"), {400}),
    "since=%ff": (WS.replace("{query}", "?since=%ff"), {400}),
    "since=%C2%B2": (WS.replace("{query}", "?since=%C2%B2"), {400}),
    "history=-1": (WS.replace("{query}", "?history=-1"), {400}),
    "presence=2": (WS.replace("{query}", "?presence=2"), {400}),
    "presence=0 while receiving": (WS.replace("{query}", "?presence=0"), {400}),
    "epoch too long": (WS.replace("{query}", "?since=1&epoch=" + "e" * 65), {400}),
    "bad percent-encoding in the query": (WS.replace("{query}", "?%zz=1&%=2"), {101}),
    "query of separators": (WS.replace("{query}", "?&&&=&=="), {101}),
    "two tokens in the query": (
        WS.replace("{auth}", "").replace("{query}", "?token=a&token=b"),
        {401},
    ),
    # rooms
    "room %ff": (WS.replace("lobby", "%ff"), {400}),
    "room %zz": (WS.replace("lobby", "%zz"), {400}),
    "room %00": (WS.replace("lobby", "%00"), {400}),
    "room a%2Fb": (WS.replace("lobby", "a%2Fb"), {400}),
    "room with U+202E": (WS.replace("lobby", "%E2%80%AElobby"), {400}),
    "empty room": (WS.replace("lobby", ""), {400}),
    "room ..": (WS.replace("lobby", "../healthz"), {400}),
    "room of 65": (WS.replace("lobby", "r" * 65), {400}),
    # tokens
    "Bearer without a token": (WS.replace("{auth}", "Authorization: Bearer\r\n"), {401}),
    "Basic auth": (WS.replace("{auth}", "Authorization: Basic YTpi\r\n"), {401}),
    "token of 7 KB": (WS.replace("{auth}", "Authorization: Bearer " + "x" * 7000 + "\r\n"), {401}),
    "binary token": (
        WS.replace("{auth}", "Authorization: Bearer \xff\xfe.\x00\r\n"),
        {CLOSED, 401},
    ),
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    srv = ServeProcess("--memory").start()
    yield srv
    srv.stop()


_markers = itertools.count()


def marked(srv: ServeProcess) -> str:
    """The log from the start up to now: a refused handshake that logs a line of its own
    (a 403 that names its user) shows that the server handled everything sent before it."""
    user = f"marker{next(_markers)}"
    token = make_token(user, rooms=["elsewhere"])
    request = WS.format(
        query="",
        host=f"Host: 127.0.0.1:{srv.port}\r\n",
        up=UPGRADE,
        auth=f"Authorization: Bearer {token}\r\n",
    )
    assert status_of(raw_exchange(srv.port, request.encode())) == 403
    deadline = time.monotonic() + 10
    while f"token for {user} does not allow" not in (log := srv.read_log()):
        assert time.monotonic() < deadline, "the marker never reached the log"
        time.sleep(0.02)
    return log


def build(template: str, port: int) -> bytes:
    return template.format(
        query="",
        host=f"Host: 127.0.0.1:{port}\r\n",
        host_lf=f"Host: 127.0.0.1:{port}\n",
        up=UPGRADE,
        auth=f"Authorization: Bearer {make_token('mallory')}\r\n",
    ).encode("latin-1")


@pytest.mark.parametrize("name", list(CORPUS))
def test_a_malformed_request_is_refused_without_a_500_or_a_traceback(
    server: ServeProcess, name: str
) -> None:
    templates, allowed = CORPUS[name]
    before = len(marked(server))
    data = (
        [build(t, server.port) for t in templates]
        if isinstance(templates, list)
        else build(templates, server.port)
    )
    answer = raw_exchange(server.port, data)
    log = marked(server)[before:]
    assert status_of(answer) in allowed, answer[:300]
    assert b" 500 " not in answer.split(b"\r\n", 1)[0]
    assert "Traceback" not in log and " ERROR " not in log, log
    assert server.proc is not None and server.proc.poll() is None


def test_pipelined_requests_get_the_first_answer_then_a_clean_close(server: ServeProcess) -> None:
    answer = raw_exchange(server.port, build(HEALTH * 3, server.port))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nok\n")
    assert answer.count(b"HTTP/1.1") == 1  # the others are for the client to send again


def test_frames_sent_with_the_handshake_are_read_after_the_101(server: ServeProcess) -> None:
    """A client that does not wait for the 101 (RFC 6455 says it should) still works: what
    it sent is held until the handshake is answered, then read as frames."""
    ping = Frame(Opcode.TEXT, json.dumps({"type": "ping", "data": "early"}).encode())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(build(WS, server.port) + ping.serialize(mask=True))
        got = b""
        while b'"pong"' not in got:
            chunk = sock.recv(65536)
            assert chunk, got
            got += chunk
    assert got.startswith(b"HTTP/1.1 101 ") and b'"early"' in got


async def test_the_server_still_serves_after_the_corpus(server: ServeProcess) -> None:
    for templates, _ in CORPUS.values():
        if not isinstance(templates, list):
            await asyncio.to_thread(
                raw_exchange, server.port, build(templates, server.port), timeout=2
            )
    async with (
        client(server.port, "lobby", "alice") as alice,
        client(server.port, "lobby", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        await alice.send(json.dumps({"message": "still here", "client_id": "c1"}))
        assert (await recv_type(bob, "message"))["message"] == "still here"
    log = marked(server)
    assert "Traceback" not in log and " ERROR " not in log
    assert " 500 " not in log
