"""A receive-only WebSocket client for the bench's load: the opening handshake, then the
server's frames parsed straight from the socket's reads.

The bench's receivers far outnumber its senders (1 room x 500: 500 receivers to 5 senders),
and each delivery cost the load client more than it cost the server: ~25 µs of CPU a frame
through ``websockets``' client (its frame parser, events, the assembler's queue and a
``recv()`` per frame), against ~8-10 µs of the server's. On a 2-core machine the client then
needs more of the cores than the server it measures, and its own queue sets the latency
figures. Here a read's frames are parsed in one ``data_received`` call and handed on as
``bytes``, each stamped with the read's arrival time.

What RFC 6455 asks of a client that only listens: the handshake (``Sec-WebSocket-Accept``
checked), a Pong for every Ping, a Close answered with a Close. Server frames are never
masked; this client offers no extension, so none is in use. A fragmented message, a
masked or oversized frame or a reserved bit set is a protocol error: the connection is
closed with 1002, as websockets' client would, and the bench counts a disconnect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
import urllib.parse
from collections.abc import Callable

#: the GUID of RFC 6455 section 1.3, for ``Sec-WebSocket-Accept``
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: the most a handshake response may take (headers), bytes
MAX_RESPONSE_HEAD = 16 * 1024

OnFrame = Callable[[bytes, float], None]


class HandshakeFailed(Exception):
    """The server did not switch protocols; ``status`` is the HTTP status it answered."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}" if status else reason)
        self.status = status


class RawReceiver(asyncio.Protocol):
    """One connection. ``opened`` resolves once the server switched protocols (or fails
    with :class:`HandshakeFailed`); then ``on_text(payload, arrived)`` is called for every
    text message, ``on_close()`` once when the connection ends."""

    def __init__(self, host: str, target: str, headers: dict[str, str], on_text: OnFrame) -> None:
        self.on_text = on_text
        self.on_close: Callable[[], None] = lambda: None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        self._upgraded = False

    # ------------------------------------------------------------------ asyncio

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport
        transport.write(self._request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_handshake(HandshakeFailed(0, "connection closed in the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
            self.on_close()

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        buf = self._buf + data if self._buf else data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_RESPONSE_HEAD:
                    self._fail_handshake(HandshakeFailed(0, "response head too long"))
                else:
                    self._buf = buf
                return
            error = self._check_response(buf[:end])
            if error is not None:
                self._fail_handshake(error)
                return
            self._upgraded = True
            self.opened.set_result(None)
            buf = buf[end + 4 :]
        self._buf = self._frames(buf, arrived)

    # ------------------------------------------------------------------ frames

    def _frames(self, buf: bytes, arrived: float) -> bytes:
        """Handle every whole frame in ``buf``; return the rest (a partial frame)."""
        i, n = 0, len(buf)
        on_text = self.on_text
        while n - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            if b1 & 0x80:  # a masked frame: servers never send one
                self.close(1002)
                return b""
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if n - i < 4:
                    break
                length = int.from_bytes(buf[i + 2 : i + 4], "big")
                head = 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(buf[i + 2 : i + 10], "big")
                head = 10
            if n - i < head + length:
                break
            payload = buf[i + head : i + head + length]
            i += head + length
            if b0 == 0x81:  # FIN, text: the frames that matter, first
                on_text(payload, arrived)
                continue
            if b0 & 0x70 or not b0 & 0x80:
                self.close(1002)  # a reserved bit, or a fragment: not supported
                return b""
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                self._send(0x8, payload[:2])
                if self._transport is not None:
                    self._transport.close()
                return b""
            elif opcode != 0xA:  # binary: nothing the bench reads
                on_text(payload, arrived)
        return buf[i:]

    def _send(self, opcode: int, payload: bytes) -> None:
        """A masked control frame (a client's frames are masked, RFC 6455 section 5.3)."""
        if self._transport is None or self._transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
        self._transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self, code: int = 1000) -> None:
        """Send a Close frame with ``code`` and close the connection (without waiting for
        the server's Close: the bench is done with it)."""
        self._send(0x8, code.to_bytes(2, "big"))
        if self._transport is not None:
            self._transport.close()

    # ------------------------------------------------------------------ handshake

    def _check_response(self, head: bytes) -> HandshakeFailed | None:
        status_line, _, rest = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return HandshakeFailed(0, "not an HTTP response")
        if status != 101:
            return HandshakeFailed(status, "")
        headers = {}
        for line in rest.split(b"\r\n"):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(self._key + _GUID).digest())
        if headers.get(b"sec-websocket-accept") != accept:
            return HandshakeFailed(0, "bad Sec-WebSocket-Accept")
        if headers.get(b"sec-websocket-extensions"):
            return HandshakeFailed(0, "an extension this client did not offer")
        return None

    def _fail_handshake(self, error: HandshakeFailed) -> None:
        if not self.opened.done():
            self.opened.set_exception(error)
            self.opened.exception()  # retrieved: whoever waited may have timed out
        if self._transport is not None:
            self._transport.close()


async def open_receiver(
    url: str, headers: dict[str, str], on_text: OnFrame, timeout: float
) -> RawReceiver:
    """Connect to ``url`` (``ws://`` only) and complete the handshake within ``timeout``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ws":  # the worker opens wss:// receivers with websockets' client
        raise ValueError(f"a RawReceiver speaks ws://, not {parts.scheme}://")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    netloc = parts.netloc.rpartition("@")[2]
    loop = asyncio.get_running_loop()
    proto = RawReceiver(netloc, target, headers, on_text)
    async with asyncio.timeout(timeout):
        transport, _ = await loop.create_connection(lambda: proto, host, port)
        try:
            await proto.opened
        except BaseException:
            transport.close()
            raise
    return proto
