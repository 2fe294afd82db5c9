"""wss:// served directly with --certfile/--keyfile (a self-signed certificate made here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chatctl.errors import ConfigError
from chatctl.server.tls import server_context
from support.harden_helpers import client_tls, self_signed_cert
from support.helpers import ServeProcess, make_server, make_token, recv_json


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


async def test_wss_with_a_trusted_certificate(cert: tuple[Path, Path]) -> None:
    certfile, keyfile = cert
    srv = make_server(certfile=certfile, keyfile=keyfile)
    async with srv:
        assert srv.scheme == "wss"
        url = f"wss://127.0.0.1:{srv.port}/ws/lobby"
        headers = {"Authorization": f"Bearer {make_token('alice')}"}
        async with connect(url, additional_headers=headers, ssl=client_tls(certfile)) as ws:
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome" and welcome["user"] == "alice"
            await ws.send(json.dumps({"message": "over TLS", "client_id": "t1"}))
            seen: dict[str, dict[str, object]] = {}
            while len(seen) < 2:
                frame = await recv_json(ws)
                if frame["type"] in ("ack", "message"):
                    seen[frame["type"]] = frame
            assert seen["ack"]["client_id"] == "t1" and seen["message"]["message"] == "over TLS"
        # a client that does not trust the certificate cannot connect
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(url, additional_headers=headers, ssl=ssl.create_default_context()):
                pass


def test_bad_tls_files_are_a_config_error(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="cannot read TLS file"):
        server_context(tmp_path / "missing.pem")
    certfile, _ = cert
    with pytest.raises(ConfigError, match="cannot load TLS certificate"):
        server_context(certfile, certfile)  # a certificate where the key should be


async def test_chatctl_serve_with_certfile(cert: tuple[Path, Path]) -> None:
    certfile, keyfile = cert
    proc = ServeProcess("--certfile", str(certfile), "--keyfile", str(keyfile)).start()
    try:
        assert "listening on wss://" in proc.log[-1]
        url = f"wss://127.0.0.1:{proc.port}/ws/lobby"
        headers = {"Authorization": f"Bearer {make_token('alice')}"}
        async with connect(url, additional_headers=headers, ssl=client_tls(certfile)) as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"
    finally:
        assert proc.stop() == 0


async def test_a_stalled_tls_reader_is_cut_off_too(cert: tuple[Path, Path]) -> None:
    """With TLS the pending output sits in the TLS layer; it must still count (4008)."""
    certfile, keyfile = cert
    proc = ServeProcess(
        *("--certfile", str(certfile), "--keyfile", str(keyfile), "--max-pending", "65536"),
        *("--rate-limit", "0", "--user-rate-limit", "0", "--memory"),
    ).start()
    try:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", proc.port))
        stalled = client_tls(certfile).wrap_socket(raw, server_hostname="127.0.0.1")
        stalled.sendall(
            (
                "GET /ws/flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {make_token('stalled')}\r\n\r\n"
            ).encode()
        )
        assert stalled.recv(12) == b"HTTP/1.1 101"  # and it never reads again
        stalled_port = stalled.getsockname()[1]
        url = f"wss://127.0.0.1:{proc.port}/ws/flood"
        headers = {"Authorization": f"Bearer {make_token('sender')}"}
        async with connect(url, additional_headers=headers, ssl=client_tls(certfile)) as ws:

            async def drain() -> None:  # read our own copies as they come
                with contextlib.suppress(ConnectionClosed):
                    async for _ in ws:
                        pass

            reader = asyncio.create_task(drain())
            # up to 8 MB: more than the kernel buffers and --max-pending; stop once it is cut
            for i in range(8000):
                await ws.send(json.dumps({"message": f"{i} " + "x" * 1000}))
                if i % 50 == 0:  # let our own reader keep up: only the stalled one is slow
                    if "slow consumer" in proc.read_log():
                        break
                    await asyncio.sleep(0.005)
            await ws.close()  # while our reader still drains, so the close handshake is quick
            await reader
        stalled.close()
    finally:
        assert proc.stop() == 0
    slow = [line for line in proc.read_log().splitlines() if "slow consumer" in line]
    assert len(slow) == 1 and f"peer=127.0.0.1:{stalled_port} " in slow[0], slow
