"""Everything refused is refused before the upgrade, with an HTTP status and a plain reason."""

from __future__ import annotations

import base64
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chatctl.auth import mint
from chatctl.server import ChatServer
from helpers import SECRET, client, make_token, recv_type, ws_url


async def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=headers or {}, open_timeout=5):
            pass
    response = info.value.response
    return response.status_code, response.body.decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_token_is_401(server: ChatServer) -> None:
    status, body = await refusal(ws_url(server.port, "general"))
    assert status == 401 and body.startswith("missing token")


async def test_expired_token_is_401(server: ChatServer) -> None:
    token = mint(SECRET, "alice", ttl=60, now=time.time() - 7200)
    status, body = await refusal(ws_url(server.port, "general"), bearer(token))
    assert status == 401 and body.startswith("token expired at")


async def test_bad_signature_is_401(server: ChatServer) -> None:
    token = mint(b"not-the-server-secret-but-long-enough!!", "alice", ttl=60)
    assert await refusal(ws_url(server.port, "general"), bearer(token)) == (
        401,
        "bad token signature\n",
    )


async def test_alg_none_is_401(server: ChatServer) -> None:
    def b64(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    token = f"{b64({'alg': 'none'})}.{b64({'sub': 'eve', 'exp': time.time() + 60})}."
    status, body = await refusal(ws_url(server.port, "general"), bearer(token))
    assert status == 401 and "not accepted" in body


async def test_malformed_token_and_header_are_401(server: ChatServer) -> None:
    assert (await refusal(ws_url(server.port, "g"), bearer("xyz")))[0] == 401
    assert (await refusal(ws_url(server.port, "g"), {"Authorization": "Basic abc"}))[0] == 401
    assert (await refusal(ws_url(server.port, "g", token="garbage")))[0] == 401


async def test_forbidden_room_is_403(server: ChatServer) -> None:
    token = make_token("bot", rooms=["ops"])
    status, body = await refusal(ws_url(server.port, "general"), bearer(token))
    assert status == 403 and body == "token for bot does not allow room general\n"
    async with client(server.port, "ops", "bot", token=token) as ws:
        assert (await recv_type(ws, "welcome"))["room"] == "ops"


@pytest.mark.parametrize("path", ["bad%20room", "-x", "a.b%2Fc", "x" * 65])
async def test_invalid_room_is_400(server: ChatServer, path: str) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws/{path}"
    status, body = await refusal(url, bearer(make_token("alice")))
    assert status == 400 and body.startswith("invalid room name")


async def test_bad_resume_parameters_are_400(server: ChatServer) -> None:
    for params in ({"since": "-1"}, {"since": "abc"}, {"history": "x"}):
        url = ws_url(server.port, "general", **params)
        status, _ = await refusal(url, bearer(make_token("alice")))
        assert status == 400


async def test_unknown_path_is_404(server: ChatServer) -> None:
    status, _ = await refusal(
        f"ws://127.0.0.1:{server.port}/chat/general", bearer(make_token("alice"))
    )
    assert status == 404


async def test_browser_style_query_token_works(server: ChatServer) -> None:
    url = ws_url(server.port, "general", token=make_token("browser"))
    async with connect(url) as ws:
        welcome = await recv_type(ws, "welcome")
        assert welcome["user"] == "browser"
        await ws.send(json.dumps({"message": "hi"}))
        msg = await recv_type(ws, "message")
        assert (msg["user"], msg["message"], msg["room"]) == ("browser", "hi", "general")


async def test_rejections_are_counted(server: ChatServer) -> None:
    await refusal(ws_url(server.port, "general"))
    await refusal(ws_url(server.port, "general"), bearer(make_token("x", rooms=["y"])))
    assert server.metrics.counters.rejected(401) == 1 and server.metrics.counters.rejected(403) == 1


async def test_bad_presence_parameter_is_400(server: ChatServer) -> None:
    url = ws_url(server.port, "general", presence="maybe")
    assert (await refusal(url, bearer(make_token("alice"))))[0] == 400
