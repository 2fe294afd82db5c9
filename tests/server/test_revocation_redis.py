"""Revoking a token across ``chatctl serve`` nodes that share one private redis-server
(issue 26, part 5): revoked on one node (``POST /api/revoke``) or on any host that reaches
the Redis (``chatctl token revoke --redis-url``), a token's connection on the other node is
closed within a second, and it stays refused by a node started afterwards. Every wait is
on a close frame or an answer, not a sleep."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import jwt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.curl import curl
from support.helpers import (
    RedisServer,
    ServeProcess,
    chatctl_env,
    client,
    make_token,
    recv_type,
)

pytestmark = [pytest.mark.redis]

PREFIX = "rv"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    try:
        yield server
    finally:
        server.cleanup()


def node(redis: RedisServer) -> ServeProcess:
    return ServeProcess("--redis-url", redis.url, "--redis-prefix", PREFIX).start()


@pytest.fixture
def nodes(redis: RedisServer) -> Iterator[list[ServeProcess]]:
    procs = [node(redis), node(redis)]
    try:
        yield procs
    finally:
        for p in procs:
            p.stop()


async def closed_within(ws: object, seconds: float) -> float:
    """Seconds until the server's close frame arrives on ``ws`` (fails past ``seconds``)."""
    from websockets.asyncio.client import ClientConnection

    assert isinstance(ws, ClientConnection)
    start = time.monotonic()
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    return time.monotonic() - start


async def refused(port: int, token: str) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as info:
        async with client(port, "general", "x", token=token):
            pass
    return info.value.response.status_code, info.value.response.body.decode().strip()


async def test_revoked_on_one_node_closes_the_connection_on_the_other(
    nodes: list[ServeProcess],
) -> None:
    a, b = nodes
    leaked = make_token("alice")
    async with (
        client(b.port, "general", "alice", token=leaked) as ws,
        client(b.port, "general", "bob") as bob,
    ):
        await recv_type(ws, "welcome")
        await recv_type(bob, "welcome")
        body = json.dumps({"token": leaked})
        admin = make_token("root", admin=True)
        answer = await curl(a.port, "/api/revoke", "-d", body, token=admin)
        assert answer.status == 200, answer.body
        assert await closed_within(ws, 1.0) < 1.0
        assert (ws.close_code, ws.close_reason) == (4002, "token revoked")
        await bob.send(json.dumps({"type": "ping", "data": 1}))
        assert (await recv_type(bob, "pong"))["data"] == 1
    assert await refused(a.port, leaked) == (401, "token revoked")
    assert await refused(b.port, leaked) == (401, "token revoked")


async def test_token_revoke_with_serves_redis_settings_reaches_every_node(
    redis: RedisServer, nodes: list[ServeProcess]
) -> None:
    a, b = nodes
    old = make_token("carol", now=time.time() - 30)
    by_id = make_token("dave")
    jti = jwt.decode(by_id, options={"verify_signature": False})["jti"]
    env = chatctl_env(CHATCTL_REDIS_URL=redis.url)
    async with (
        client(a.port, "general", "carol", token=old) as on_a,
        client(b.port, "general", "carol", token=old) as on_b,
        client(b.port, "general", "dave", token=by_id) as dave,
    ):
        for ws in (on_a, on_b, dave):
            await recv_type(ws, "welcome")
        command = [sys.executable, "-m", "chatctl", "token", "revoke", "--redis-prefix", PREFIX]
        done = await asyncio.to_thread(
            subprocess.run,
            [*command, "--user", "carol"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert await closed_within(on_a, 1.0) < 1.0
        assert await closed_within(on_b, 1.0) < 1.0
        done = await asyncio.to_thread(
            subprocess.run, [*command, jti], capture_output=True, text=True, env=env, timeout=30
        )
        assert done.returncode == 0, done.stderr
        assert await closed_within(dave, 1.0) < 1.0
    # the entries are Redis keys that expire with the tokens they cover
    keys = redis.client()
    ttl = keys.ttl(f"{PREFIX}:{{revoked}}:entries")
    assert ttl > 9 * 365 * 86400  # a user's cut-off and an id alone: ten years ahead
    # a node started afterwards refuses them from its first handshake
    b.stop()
    restarted = node(redis)
    try:
        assert (await refused(restarted.port, old))[0] == 401
        assert await refused(restarted.port, by_id) == (401, "token revoked")
        async with client(restarted.port, "general", "carol") as ws:  # a new token of carol
            await recv_type(ws, "welcome")
    finally:
        restarted.stop()


def test_token_revoke_says_when_redis_cannot_be_reached(redis: RedisServer) -> None:
    url = redis.url
    redis.stop()
    done = subprocess.run(
        [sys.executable, "-m", "chatctl", "token", "revoke", "--redis-url", url, "abc"],
        capture_output=True,
        text=True,
        env=chatctl_env(),
        timeout=60,
    )
    assert done.returncode == 4
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatctl: the revocation was not stored")
