"""wss:// served directly with --certfile/--keyfile (a self-signed certificate made here)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
from harden_helpers import client_tls, self_signed_cert
from websockets.asyncio.client import connect

from chatctl.errors import ConfigError
from chatctl.server.tls import server_context
from conftest import make_server
from helpers import ServeProcess, make_token, recv_json


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
