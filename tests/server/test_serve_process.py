"""A real ``chatctl serve`` process: SIGTERM drain (1012), SIGINT (1001), logs without
tokens in both formats, the handshake timeout, and bad flags."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from support.harden_helpers import http_get, refused
from support.helpers import ServeProcess, chatctl_env, client, make_token, recv_type, ws_url


async def _close_code_after(proc: ServeProcess, sig: int, n: int = 3) -> tuple[list[int], float]:
    """Open ``n`` clients, send ``sig``, return the close codes they saw and the exit time."""
    codes: list[int] = []

    async def one(i: int) -> None:
        async with client(proc.port, "lobby", f"user{i}") as ws:
            await recv_type(ws, "welcome")
            ready.release()
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as exc:
                assert exc.rcvd is not None
                codes.append(exc.rcvd.code)

    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    for _ in range(n):
        await asyncio.wait_for(ready.acquire(), 10)
    started = time.monotonic()
    assert proc.proc is not None
    proc.proc.send_signal(sig)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    exit_code = await asyncio.to_thread(proc.proc.wait, 10)
    assert exit_code == 0
    return codes, time.monotonic() - started


async def test_sigterm_drains_with_1012_in_bounded_time() -> None:
    proc = ServeProcess("--drain-timeout", "3").start()
    codes, took = await _close_code_after(proc, signal.SIGTERM)
    assert codes == [1012, 1012, 1012]
    assert took < 3 + 2
    log = proc.read_log()
    assert "SIGTERM: draining 3 connections with 1012" in log and "stopped" in log


async def test_sigint_closes_with_1001() -> None:
    proc = ServeProcess().start()
    codes, _ = await _close_code_after(proc, signal.SIGINT, n=2)
    assert codes == [1001, 1001]


def test_drain_is_bounded_even_if_clients_never_answer_the_close() -> None:
    """Clients that stopped reading never complete the closing handshake: aborted in time."""
    proc = ServeProcess("--drain-timeout", "1").start()
    socks = []
    try:
        for i in range(3):
            s = socket.create_connection(("127.0.0.1", proc.port))
            s.sendall(
                (
                    f"GET /ws/lobby HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {make_token(f'u{i}')}"
                    "\r\n\r\n"
                ).encode()
            )
            socks.append(s)
        time.sleep(0.5)
        started = time.monotonic()
        assert proc.stop(signal.SIGTERM, timeout=10) == 0
        assert time.monotonic() - started < 1 + 3
    finally:
        for s in socks:
            s.close()


def _token_free(log: str, *tokens: str) -> None:
    for token in tokens:
        assert token not in log
        for part in token.split("."):  # not even the signature or the claims alone
            assert part not in log


@pytest.mark.parametrize("fmt", ["text", "json"])
async def test_logs_never_contain_a_token(fmt: str) -> None:
    proc = ServeProcess("--log-format", fmt, "--log-level", "debug").start()
    good = make_token("alice")
    forged = make_token("mallory")[:-6] + "AAAAAA"
    expired = make_token("bob", ttl=-60)
    try:
        # a browser-style ?token=… in the URL, a Bearer header, bad and expired tokens
        async with connect(ws_url(proc.port, "lobby", token=good)) as ws:
            await recv_type(ws, "welcome")
        for token in (forged, expired):
            with pytest.raises(InvalidStatus):
                async with connect(ws_url(proc.port, "lobby", token=token)):
                    pass
            with pytest.raises(InvalidStatus):
                async with connect(
                    ws_url(proc.port, "lobby"),
                    additional_headers={"Authorization": f"Bearer {token}"},
                ):
                    pass
    finally:
        proc.stop()
    log = proc.read_log()
    assert "rejected 401" in log and "connect user=alice" in log
    _token_free(log, good, forged, expired)
    if fmt == "json":
        records = [json.loads(line) for line in log.splitlines() if line.strip()]
        assert {"ts", "level", "logger", "message"} <= set(records[0])
        assert any("rejected 401" in r["message"] for r in records)


def test_redaction_of_other_libraries_lines() -> None:
    from chatctl.log import redact

    token = make_token("alice")
    line = f"GET /ws/x?since=3&token={token}&history=2 Authorization: Bearer {token}"
    out = redact(line)
    assert token not in out and "since=3" in out and "history=2" in out
    assert redact(f"exception: bad {token}") == "exception: bad [redacted-jwt]"


async def test_handshakes_that_never_finish_are_dropped() -> None:
    """Slowloris: a request trickled forever is cut at --handshake-timeout."""
    proc = ServeProcess("--handshake-timeout", "1").start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
        writer.write(b"GET /ws/lobby HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        with pytest.raises((ConnectionError, OSError)):
            for _ in range(40):  # one header line every 0.1 s, never the final blank line
                await asyncio.sleep(0.1)
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                if reader.at_eof():
                    raise ConnectionResetError
        assert time.monotonic() - started < 3
        writer.close()
        # the server is fine
        async with client(proc.port, "lobby", "alice") as ws:
            await recv_type(ws, "welcome")
    finally:
        assert proc.stop() == 0


def test_bad_flags_are_usage_errors() -> None:
    env = chatctl_env()
    for args, message in [
        (["--log-format", "xml"], "'xml' is not one of 'text', 'json'"),
        (["--keyfile", "/nonexistent"], "--keyfile needs --certfile"),
        (["--certfile", "/nonexistent.pem"], "cannot read TLS file"),
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "chatctl", "serve", "--port", "0", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr


async def test_limit_flags_reach_the_server() -> None:
    proc = ServeProcess(
        *("--allowed-origin", "https://chat.example.com", "--max-user-connections", "1"),
        *("--rate-limit", "1", "--rate-burst", "1"),
    ).start()
    try:
        status, _ = await refused(
            proc.port, "lobby", "alice", headers={"Origin": "https://evil.example"}
        )
        assert status == 403
        async with client(proc.port, "lobby", "alice") as ws:
            await recv_type(ws, "welcome")
            assert (await refused(proc.port, "lobby", "alice"))[0] == 429
            await ws.send(json.dumps({"message": "one", "client_id": "1"}))
            await ws.send(json.dumps({"message": "two", "client_id": "2"}))
            error = await recv_type(ws, "error")
            assert error["code"] == "rate_limited" and error["client_id"] == "2"
        status, _, body = await http_get(proc.port, "/metrics")
        assert status == 200 and b'chatctl_errors_total{code="rate_limited"} 1.0' in body
    finally:
        assert proc.stop() == 0
