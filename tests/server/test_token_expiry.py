"""A connection lives as long as its token (issue 11, item 7): closed with 4001 at ``exp``
plus the leeway unless a ``refresh`` frame renewed it; SIGHUP reloads the key."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chatctl.server import ChatServer
from support.helpers import (
    ServeProcess,
    chatctl_env,
    client,
    recv_type,
    timed_token,
    wait_until,
)

LEEWAY = 0.5


async def closed(ws: ClientConnection, timeout: float) -> float:
    """Read until the server closes ``ws``; the time it happened."""
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return time.time()


async def send(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    """Send a frame and return the first answer that is not a message or presence frame."""
    await ws.send(json.dumps(frame))
    while True:
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if answer["type"] not in ("message", "presence"):
            return answer


async def test_a_connection_is_closed_when_its_token_expires(leeway_server: ChatServer) -> None:
    tok = timed_token("alice", 1.5)
    exp = jwt.decode(tok, options={"verify_signature": False})["exp"]
    async with client(leeway_server.port, "general", "alice", token=tok) as ws:
        await recv_type(ws, "welcome")
        ack = await send(ws, {"message": "still valid", "client_id": "c1"})
        assert ack["type"] == "ack"
        at = await closed(ws, 10)
        assert ws.close_code == 4001 and ws.close_reason == "token expired"
        assert exp + LEEWAY - 0.05 <= at < exp + LEEWAY + 1.5
    assert leeway_server.metrics.counters.token_expiries == 1


async def test_refresh_keeps_the_connection_open(leeway_server: ChatServer) -> None:
    async with client(
        leeway_server.port, "general", "alice", token=timed_token("alice", 1.5)
    ) as ws:
        await recv_type(ws, "welcome")
        fresh = timed_token("alice", 3600)
        answer = await send(ws, {"type": "refresh", "token": fresh})
        new_exp = jwt.decode(fresh, options={"verify_signature": False})["exp"]
        assert answer == {"type": "refreshed", "user": "alice", "exp": new_exp}
        assert leeway_server.metrics.counters.token_refreshes == 1
        await asyncio.sleep(1.5 + LEEWAY + 0.5)  # past the first token's expiry
        ack = await send(ws, {"message": "after the first exp", "client_id": "c1"})
        assert ack["type"] == "ack"
        # a refresh with a shorter token shortens the connection's life
        answer = await send(ws, {"type": "refresh", "token": timed_token("alice", 1)})
        assert answer["type"] == "refreshed"
        await closed(ws, 5)
        assert ws.close_code == 4001


async def test_refused_refreshes_change_nothing(leeway_server: ChatServer) -> None:
    first = timed_token("alice", 7.5, rooms=["general"])
    async with client(leeway_server.port, "general", "alice", token=first) as ws:
        await recv_type(ws, "welcome")
        refusals = {
            "another user": (timed_token("bob", 3600), "invalid_token", "token is for bob"),
            "room not allowed": (
                timed_token("alice", 3600, rooms=["ops"]),
                "forbidden",
                "does not allow room general",
            ),
            "expired": (timed_token("alice", -60), "invalid_token", "token expired at"),
            "bad signature": (
                timed_token("alice", 3600, secret=b"another-secret-0123456789abcdefghijkl"),
                "invalid_token",
                "bad token signature",
            ),
            "not a token": ("x.y.z", "invalid_token", "malformed token"),
        }
        for what, (tok, code, reason) in refusals.items():
            await asyncio.sleep(1.0)  # one refresh per second is verified
            answer = await send(ws, {"type": "refresh", "token": tok})
            assert answer["type"] == "error" and answer["code"] == code, what
            assert reason in answer["reason"], (what, answer)
            assert tok not in answer["reason"]
        answer = await send(ws, {"type": "refresh", "token": timed_token("alice", 3600)})
        assert answer["code"] == "rate_limited" and 0 < answer["retry_after"] <= 1
        answer = await send(ws, {"type": "refresh"})
        assert (answer["code"], answer["reason"]) == ("missing_field", "missing field: token")
        answer = await send(ws, {"type": "refresh", "token": 5})
        assert answer["code"] == "invalid_field"
        assert (await send(ws, {"type": "ping", "data": 1}))["type"] == "pong"  # still open
        await closed(ws, 10)
        assert ws.close_code == 4001


async def test_sighup_reloads_the_secret(tmp_path: Path) -> None:
    """Rotating the secret file and sending SIGHUP: old-key tokens are refused for new
    connections and refreshes, new-key ones accepted; one log line, never the key."""
    secret_file = tmp_path / "secret"
    old, new = b"old-secret-0123456789abcdefghijklmnop", b"new-secret-0123456789abcdefghijklmnop"
    secret_file.write_bytes(old + b"\n")
    node = ServeProcess("--secret-file", str(secret_file), env=chatctl_env()).start()
    try:
        async with client(
            node.port, "general", "alice", token=timed_token("alice", 60, secret=old)
        ) as ws:
            await recv_type(ws, "welcome")
            secret_file.write_bytes(new + b"\n")
            assert node.proc is not None
            node.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(wait_until, lambda: "token key reloaded" in node.read_log())
            with pytest.raises(InvalidStatus) as refused:
                async with client(
                    node.port, "general", "bob", token=timed_token("bob", 60, secret=old)
                ):
                    pass
            assert refused.value.response.status_code == 401
            async with client(
                node.port, "general", "bob", token=timed_token("bob", 60, secret=new)
            ) as b:
                await recv_type(b, "welcome")
            answer = await send(
                ws, {"type": "refresh", "token": timed_token("alice", 60, secret=old)}
            )
            assert (answer["code"], answer["reason"]) == ("invalid_token", "bad token signature")
            await asyncio.sleep(1.0)  # one refresh per second is verified
            answer = await send(
                ws, {"type": "refresh", "token": timed_token("alice", 60, secret=new)}
            )
            assert answer["type"] == "refreshed"
            # an unreadable file keeps the current key, and says so
            secret_file.unlink()
            node.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(wait_until, lambda: "not reloaded" in node.read_log())
            async with client(
                node.port, "general", "bob", token=timed_token("bob", 60, secret=new)
            ) as b:
                await recv_type(b, "welcome")
    finally:
        node.stop()
    log = node.read_log()
    reloads = [line for line in log.splitlines() if "SIGHUP" in line]
    assert len(reloads) == 2, reloads
    assert f"token key reloaded from {secret_file} (changed" in reloads[0]
    assert "keeping the current one: cannot read secret file" in reloads[1]
    assert old.decode() not in log and new.decode() not in log


def _ec_key_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


async def test_reload_reads_a_public_key_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What SIGHUP does with --public-key: the next handshake needs the new issuer key."""
    from chatctl.broker.memory import MemoryBroker
    from chatctl.server.assemble import ServeOptions, build_verifier
    from chatctl.server.settings import ServerSettings

    old_private, old_public = _ec_key_pair()
    new_private, new_public = _ec_key_pair()
    public = tmp_path / "issuer.pem"
    public.write_bytes(old_public)
    opts = ServeOptions(public_key=public)
    srv = ChatServer(
        ServerSettings(port=0),
        build_verifier(opts),
        MemoryBroker(),
        load_verifier=lambda: build_verifier(opts, reload=True),
    )

    def es256(private: bytes) -> str:
        return jwt.encode({"sub": "alice", "exp": time.time() + 60}, private, algorithm="ES256")

    async with srv:
        async with client(srv.port, "general", "alice", token=es256(old_private)) as ws:
            await recv_type(ws, "welcome")
        public.write_bytes(new_public)
        with caplog.at_level("INFO", "chatctl.server"):
            assert srv.reload_key()
            assert srv.reload_key()
        messages = [r.getMessage() for r in caplog.records if "SIGHUP" in r.getMessage()]
        assert messages[0] == f"SIGHUP: token key reloaded from {public} (changed: " + (
            "tokens signed with the old key are refused from now on)"
        )
        assert messages[1] == f"SIGHUP: token key reloaded from {public} (unchanged)"
        with pytest.raises(InvalidStatus) as refused:
            async with client(srv.port, "general", "alice", token=es256(old_private)):
                pass
        assert refused.value.response.status_code == 401
        async with client(srv.port, "general", "alice", token=es256(new_private)) as ws:
            await recv_type(ws, "welcome")
