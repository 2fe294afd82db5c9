"""Everything refused is refused before the upgrade, with an HTTP status and a plain reason."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chatctl.server import ChatServer
from chatctl.tokens.mint import mint
from support.helpers import SECRET, ServeProcess, client, make_token, recv_type, wait_until, ws_url


async def refusal(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=headers or {}, open_timeout=5):
            pass
    response = info.value.response
    return response.status_code, response.body.decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(d: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def forged(header: object) -> str:
    """What an attacker without the key can send: any header, a signature of junk."""
    return f"{b64(header)}.{b64({'sub': 'eve', 'exp': int(time.time()) + 60})}.c2ln"


def signed(**raw: str) -> str:
    """A token signed with the server's secret whose claims are ``"sub": "eve"`` and ``raw``,
    each value written as is (``exp="NaN"`` gives ``"exp": NaN``)."""
    body = ", ".join(f'"{name}": {value}' for name, value in {"sub": '"eve"', **raw}.items())
    return jwt.api_jws.encode(f"{{{body}}}".encode(), SECRET, algorithm="HS256")


#: (request, what the server answered before issue 11 was fixed)
HOSTILE_HEADERS = [
    forged({"alg": "HS256", "crit": ["x"]}),  # 500, 20-line traceback
    forged({"alg": "HS256", "crit": "x"}),  # 500
    forged({"alg": "HS256", "kid": 1}),  # 500
    forged({"alg": "HS256", "crit": ["x\nERROR forged log line"]}),
]
NEVER_EXPIRING = [signed(exp=exp) for exp in ("NaN", "1e300", "1e999")]
INVISIBLE_USERS = [
    jwt.encode({"sub": user, "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    for user in ("alice\u200b", "\u202ealice", "al\u00adice")
]
BAD_QUERIES = [  # (query, the parameter the 400 names); history=\u00b2 was a 500, since a raw
    ("history=%C2%B2", "history"),  # int() message
    ("since=%C2%B2", "since"),
    ("since=%D9%A3", "since"),  # ARABIC-INDIC DIGIT THREE
    ("history=1_0", "history"),
    ("since=+1", "since"),
    ("since=%201", "since"),
    ("epoch=%00", "epoch"),
    ("epoch=" + "e" * 65, "epoch"),
    ("presence=%C2%B9", "presence"),
]


def rejected_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected")]


async def test_hostile_jwt_headers_are_401_with_one_log_line(
    server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for token in HOSTILE_HEADERS:
        status, body = await refusal(ws_url(server.port, "general"), bearer(token))
        assert status == 401 and body.startswith("malformed token: "), body
        assert body.count("\n") == 1  # one line, the forged newline escaped
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    lines = rejected_lines(caplog)
    assert len(lines) == len(HOSTILE_HEADERS) and all("\n" not in line for line in lines)
    assert lines[0].endswith("malformed token: Unsupported critical extension: x")


async def test_tokens_that_never_expire_are_401(server: ChatServer) -> None:
    for token in NEVER_EXPIRING:
        status, body = await refusal(ws_url(server.port, "general"), bearer(token))
        assert status == 401 and body.startswith("token exp claim is "), body
        assert "not a finite number" in body or "more than ten years ahead" in body


async def test_invisible_characters_in_sub_are_401(server: ChatServer) -> None:
    for token in INVISIBLE_USERS:
        status, body = await refusal(ws_url(server.port, "general"), bearer(token))
        assert status == 401 and body.startswith("token sub is not a valid user name: U+")


@pytest.mark.parametrize(("query", "name"), BAD_QUERIES)
async def test_query_parameters_take_ascii_digits_only(
    server: ChatServer, caplog: pytest.LogCaptureFixture, query: str, name: str
) -> None:
    caplog.set_level(logging.INFO)
    url = f"ws://127.0.0.1:{server.port}/ws/general?{query}"
    status, body = await refusal(url, bearer(make_token("alice")))
    assert status == 400 and body.startswith(f"{name} must be ") and body.count("\n") == 1
    assert "int()" not in body
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_ascii_digit_parameters_still_work(server: ChatServer) -> None:
    async with client(server.port, "general", "alice", history="0007", since=None) as ws:
        assert (await recv_type(ws, "welcome"))["history"] == []
    async with client(server.port, "general", "alice", since="0", epoch="x.y_z-1") as ws:
        welcome = await recv_type(ws, "welcome")
        assert welcome["since"] == 0 and welcome["recovered"] is False  # another epoch
    async with client(server.port, "general", "alice", history="9" * 30) as ws:
        await recv_type(ws, "welcome")  # clipped to --history, as before


def test_serve_logs_one_line_per_hostile_handshake() -> None:
    """The issue's reproduction, against a real ``chatctl serve``: every hostile request of
    items 3, 4, 5 and 8 gets a 4xx and exactly one log line, never a 500 or a traceback."""
    proc = ServeProcess().start()
    try:
        requests = [(f"/ws/general?{q}", make_token("alice")) for q, _ in BAD_QUERIES]
        requests += [("/ws/general", t) for t in HOSTILE_HEADERS + NEVER_EXPIRING]
        requests += [("/ws/general", t) for t in INVISIBLE_USERS]

        async def run() -> list[int]:
            url = f"ws://127.0.0.1:{proc.port}"
            return [(await refusal(url + path, bearer(token)))[0] for path, token in requests]

        statuses = asyncio.run(run())
        assert set(statuses) <= {400, 401}, statuses
        wait_until(lambda: proc.read_log().count(" rejected ") == len(requests))
    finally:
        proc.stop()
    log = proc.read_log()
    lines = log.splitlines()
    assert "Traceback" not in log and all(" INFO " in line for line in lines), log
    assert sum(" rejected 4" in line for line in lines) == len(requests)


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


async def test_an_unlisted_connection_must_be_write_only(server: ChatServer) -> None:
    """presence=0 alone would be an invisible reader: alice's who would not show mallory,
    who reads every message (issue 22, item 4)."""
    async with client(server.port, "general", "alice") as alice:
        await recv_type(alice, "welcome")
        url = ws_url(server.port, "general", presence=0)
        status, body = await refusal(url, bearer(make_token("mallory")))
        assert (status, body) == (
            400,
            "presence=0 needs receive=0: a connection that reads the room is listed in it\n",
        )
        cases: list[dict[str, Any]] = [
            {"presence": 0, "receive": 0},
            {"receive": 0},
            {"presence": 1},
        ]
        for params in cases:
            async with client(server.port, "general", "mallory", **params) as ws:
                await recv_type(ws, "welcome")
                await alice.send('{"type": "who"}')
                listed = "mallory" in (await recv_type(alice, "who"))["users"]
                assert listed is (params.get("presence") != 0), params
