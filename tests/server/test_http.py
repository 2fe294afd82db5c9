"""GET /healthz, GET /metrics and the Origin check, on a live in-process server."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect

from chatctl.server import ChatServer
from chatctl.server.http import OriginPolicy
from support.harden_helpers import http_get, refused
from support.helpers import client, make_server, make_token, recv_type, ws_url
from support.metrics import samples


async def test_healthz_is_200_while_serving(server: ChatServer) -> None:
    status, headers, body = await http_get(server.port, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["content-type"].startswith("text/plain")


async def test_healthz_is_503_when_the_broker_is_unhealthy(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.broker, "healthy", lambda: False)
    status, _, body = await http_get(server.port, "/healthz")
    assert status == 503 and b"broker unavailable" in body
    monkeypatch.setattr(server.broker, "healthy", lambda: 1 / 0)  # a broken check is unhealthy
    assert (await http_get(server.port, "/healthz"))[0] == 503


async def test_healthz_is_503_while_draining() -> None:
    srv = make_server(shutdown_timeout=2.0)
    async with srv, client(srv.port, "r", "alice") as ws:
        await recv_type(ws, "welcome")
        srv._closing_code = 1012  # what stop() sets first
        assert srv.health_problem() is not None
        srv._closing_code = None


async def test_metrics_count_what_happened() -> None:
    srv = make_server()
    async with srv:
        async with client(srv.port, "lobby", "alice") as a, client(srv.port, "lobby", "bob") as b:
            await recv_type(a, "welcome")
            await recv_type(b, "welcome")
            for i in range(3):
                await a.send(json.dumps({"message": f"hi {i}", "client_id": f"c{i}"}))
                await recv_type(a, "ack")
            await a.send("not json")
            await recv_type(a, "error")
            for _ in range(3):
                await recv_type(b, "message")
            await refused(srv.port, "lobby", "eve", headers={"Authorization": "Bearer nope"})
            status, headers, body = await http_get(srv.port, "/metrics")
            assert status == 200 and headers["content-type"].startswith("text/plain; version=")
            m = samples(body.decode())
        assert m["chatctl_connections", ()] == 2
        assert m["chatctl_rooms", ()] == 1
        assert m["chatctl_broker_up", ()] == 1
        assert m["chatctl_messages_in_total", ()] == 3
        assert m["chatctl_acks_total", ()] == 3
        assert m["chatctl_deliveries_total", ()] >= 6  # 3 messages x 2 members (+ presence)
        assert m["chatctl_errors_total", (("code", "invalid_json"),)] == 1
        rejection = (("reason", "invalid_token"), ("status", "401"))
        assert m["chatctl_handshake_rejections_total", rejection] == 1
        assert m["chatctl_broker_publish_seconds_count", ()] == 3
        assert m["chatctl_fanout_seconds_count", ()] >= 3
        assert m["chatctl_slow_consumer_disconnects_total", ()] == 0
        assert ("chatctl_broker_reconnects_total", ()) not in m  # the memory broker has none


async def test_metrics_expose_a_brokers_reconnects() -> None:
    srv = make_server()
    srv.broker.reconnects = 4  # type: ignore[attr-defined]  # what a Redis broker keeps
    async with srv:
        _, _, body = await http_get(srv.port, "/metrics")
    assert samples(body.decode())["chatctl_broker_reconnects_total", ()] == 4


async def test_every_server_has_its_own_registry() -> None:
    a, b = make_server(), make_server()
    async with a, b, client(a.port, "r", "alice") as ws:
        await recv_type(ws, "welcome")
        ma = samples((await http_get(a.port, "/metrics"))[2].decode())
        mb = samples((await http_get(b.port, "/metrics"))[2].decode())
    assert ma["chatctl_connections", ()] == 1 and mb["chatctl_connections", ()] == 0


# ------------------------------------------------------------------------------ methods


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
async def test_head_has_the_get_headers_and_no_body(server: ChatServer, path: str) -> None:
    get_status, get_headers, get_body = await http_get(server.port, path)
    status, headers, body = await http_get(server.port, path, method="HEAD")
    assert status == get_status == 200 and get_body and body == b""  # before: the whole body
    assert int(headers["content-length"]) > 0  # the size a GET would get
    assert headers["content-type"] == get_headers["content-type"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/metrics?x=1"])
async def test_other_methods_on_pages_are_405(server: ChatServer, method: str, path: str) -> None:
    status, headers, body = await http_get(
        server.port, path, method=method, headers={"Content-Length": "0"}
    )
    assert (status, headers["allow"]) == (405, "GET, HEAD")  # before: 200 and the metrics
    assert json.loads(body) == {
        "type": "error",
        "code": "method_not_allowed",
        "reason": "use GET, HEAD",
    }


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD", "DELETE"])
async def test_a_handshake_is_a_get(server: ChatServer, method: str) -> None:
    """A websocket upgrade with another method is 405 before the token is even read."""
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Authorization": f"Bearer {make_token('alice')}",
    }
    status, headers, body = await http_get(
        server.port, "/ws/general", method=method, headers=upgrade
    )
    assert (status, headers["allow"]) == (405, "GET")
    # HEAD is answered by websockets, the other methods by the HTTP API (JSON errors)
    if method == "HEAD":
        assert body == b""
    else:
        assert json.loads(body)["code"] == "method_not_allowed"
    # no token: still 405, not 401; elsewhere: 404; a HEAD answer never has a body
    assert (await http_get(server.port, "/ws/general", method=method))[0] == 405
    status, _, body = await http_get(server.port, "/elsewhere", method=method)
    assert status == 404
    assert body == b"" if method == "HEAD" else json.loads(body)["code"] == "not_found"


# ------------------------------------------------------------------------------ origin


def test_origin_policy() -> None:
    default = OriginPolicy()
    assert default.allows(None, "chat.example.com")  # CLIs send no Origin
    assert default.allows("https://chat.example.com", "chat.example.com")  # same origin
    assert default.allows("https://chat.example.com", "chat.example.com:443")
    assert default.allows("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not default.allows("https://evil.example", "chat.example.com")
    assert not default.allows("http://127.0.0.1:9999", "127.0.0.1:8000")
    assert not default.allows("null", "chat.example.com")
    listed = OriginPolicy(["https://app.example.com", "https://*.corp.example/"])
    assert listed.allows("https://APP.example.com", "api.example.com")
    assert listed.allows("https://team.corp.example", "api.example.com")
    assert not listed.allows("http://app.example.com", "api.example.com")
    assert OriginPolicy(["*"]).allows("https://anything.example", "x")


async def test_cross_site_browser_gets_403_before_the_upgrade() -> None:
    srv = make_server(allowed_origins=("https://chat.example.com",))
    async with srv:
        status, body = await refused(
            srv.port, "lobby", "alice", headers={"Origin": "https://evil.example"}
        )
        assert status == 403 and "origin not allowed" in body
        assert srv.metrics.counters.rejections["origin", 403] == 1
        # an allowed page, the server's own origin, and a CLI without Origin all get in
        for headers in (
            {"Origin": "https://chat.example.com"},
            {"Origin": f"http://127.0.0.1:{srv.port}"},
            {},
        ):
            async with connect(
                ws_url(srv.port, "lobby"),
                additional_headers={"Authorization": f"Bearer {make_token('a')}", **headers},
            ) as ws:
                await recv_type(ws, "welcome")
