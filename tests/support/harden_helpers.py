"""Helpers for the hardening tests: raw HTTP requests, refusals, certificates, RSS."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import re
import ssl
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from support.helpers import make_token, ws_url


async def http_get(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 5,
    method: str = "GET",
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP/1.1 request (GET unless told) on loopback, read to EOF:
    (status, lower-cased headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        async with asyncio.timeout(timeout):
            # to the answer's end: its Content-Length (a kept-alive connection stays open),
            # else EOF
            raw = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", raw)
            if method == "HEAD" or raw.startswith((b"HTTP/1.1 204", b"HTTP/1.1 304")):
                pass
            elif length is not None:
                raw += await reader.readexactly(int(length.group(1)))
            else:
                raw += await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        hdrs[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), hdrs, body


async def refused(
    port: int, room: str, user: str, *, headers: dict[str, str] | None = None, **params: Any
) -> tuple[int, str]:
    """Connect expecting a refusal before the upgrade: (HTTP status, body)."""
    all_headers = {"Authorization": f"Bearer {make_token(user)}", **(headers or {})}
    try:
        async with connect(
            ws_url(port, room, **params), additional_headers=all_headers, open_timeout=5
        ):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code, exc.response.body.decode()
    raise AssertionError("the connection was accepted")


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chatctl test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def client_tls(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raw_exchange(port: int, data: bytes | list[bytes], *, timeout: float = 5) -> bytes:
    """Send ``data`` on a fresh TCP connection (a list: one write each, a pause between),
    then read until EOF, until a 101's head has arrived (the upgrade worked: nothing ends
    it), or until ``timeout``; return what came back."""
    import socket
    import time

    chunks = data if isinstance(data, list) else [data]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(0.05)  # separate reads on the server's side
            sock.sendall(chunk)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not got:
                break
            out += got
            if out.startswith(b"HTTP/1.1 101 ") and b"\r\n\r\n" in out:
                break
        return out


def status_of(answer: bytes) -> int | None:
    """The status of the first HTTP response in ``answer``; None when nothing came back."""
    if not answer:
        return None
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/") else -1
