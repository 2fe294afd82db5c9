"""``chatctl send --http``: the messages through the server's HTTP API
(``POST /rooms/{room}/messages``, docs/http.md) instead of a WebSocket, for a network where
only HTTP gets through (a proxy without WebSocket support).

The same promises as the WebSocket sender: every message carries a client id (as its
``Idempotency-Key``), so a request re-sent after a lost answer is never stored twice;
messages are sent one after another, each once the previous one is acked, so they are
stored in order; ``429`` and ``503`` are waited out (``Retry-After``) and the message sent
again until ``--timeout``; the exit statuses are those of ``chatctl send``. One message per
request: slower than the WebSocket's window of messages in flight.

Imports only the standard library's ``http.client``.
"""

from __future__ import annotations

import http.client
import json
import secrets
import sys
import time
from collections.abc import Iterator
from typing import TextIO
from urllib.parse import quote

from chatctl.client.output import write_line
from chatctl.client.settings import ClientSettings
from chatctl.errors import (
    AuthError,
    ConnectError,
    DeliveryTimeout,
    MessageRejected,
    UsageError,
)

#: bytes of one line of stdin that are sent at most (as the WebSocket sender)
MAX_LINE_BYTES = 64 * 1024
#: seconds between two attempts to reach an unreachable server
RECONNECT_DELAY = 1.0


class HttpSender:
    def __init__(
        self,
        settings: ClientSettings,
        room: str,
        *,
        kind: str,
        timeout: float,
        json_output: bool,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        scheme, _, rest = settings.server.partition("://")
        host, _, base = rest.partition("/")
        self.tls = scheme == "wss"
        self.host = host
        self.path = f"/{base}".rstrip("/") + f"/rooms/{quote(room, safe='')}/messages"
        self.settings = settings
        self.kind = kind
        self.timeout = timeout
        self.json = json_output
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        self.conn: http.client.HTTPConnection | None = None
        self.connected_once = False
        self.rejected = 0

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            wait = self.timeout or None
            if self.tls:
                from chatctl.client.connect import _ssl_context

                self.conn = http.client.HTTPSConnection(
                    self.host, timeout=wait, context=_ssl_context(self.settings)
                )
            else:
                self.conn = http.client.HTTPConnection(self.host, timeout=wait)
        return self.conn

    def send(self, text: str, number: int | None) -> None:
        """Post one message until it is acked, refused for good, or the timeout passes."""
        body = json.dumps({"message": text, "kind": self.kind}).encode()
        key = secrets.token_urlsafe(12)
        deadline = time.monotonic() + self.timeout if self.timeout else None
        while True:
            token = self.settings.token.get().value
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            }
            try:
                conn = self._connection()
                conn.request("POST", self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.connected_once = True
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                if deadline is not None and time.monotonic() + RECONNECT_DELAY > deadline:
                    if self.connected_once:
                        raise DeliveryTimeout(
                            f"a message was not acked within {self.timeout:g}s: {exc}"
                        ) from None
                    raise ConnectError(f"cannot reach {self.host}: {exc}") from None
                time.sleep(RECONNECT_DELAY)
                continue
            status = answer.status
            if status in (200, 201):
                if self.json:
                    write_line(self.out, data.decode().strip())
                return
            reason = _reason(data)
            if status in (429, 503):
                wait = float(answer.getheader("Retry-After") or 1)
                if deadline is not None and time.monotonic() + wait > deadline:
                    raise DeliveryTimeout(
                        f"a message was not acked within {self.timeout:g}s: {reason}"
                    )
                time.sleep(wait)
                continue
            if status in (401, 403) and _code(data) != "read_only":  # read_only: this message
                raise AuthError(f"HTTP {status}: {reason}")
            if status == 404:
                raise UsageError(f"{self.host} has no HTTP API (HTTP 404): {reason}")
            where = f"line {number}: " if number is not None else ""
            self.err.write(f"chatctl: {where}not sent (HTTP {status}): {reason}\n")
            self.rejected += 1
            return

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self._drop()


def _code(data: bytes) -> str | None:
    """The error frame's ``code`` in an answer's body, if it has one."""
    try:
        code = json.loads(data)["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def _reason(data: bytes) -> str:
    try:
        reason = json.loads(data)["reason"]
        return str(reason)
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", "replace").strip()[:200]


def stdin_lines(errors: str) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of each line of stdin; None for a line that cannot be sent."""
    for number, raw in enumerate(sys.stdin.buffer, 1):
        raw = raw.rstrip(b"\n").rstrip(b"\r")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if len(raw) > MAX_LINE_BYTES:
            yield number, None
            continue
        try:
            yield number, raw.decode("utf-8", errors)
        except UnicodeDecodeError:
            yield number, None


def run_http_send(
    settings: ClientSettings,
    room: str,
    texts: list[str] | None,
    *,
    kind: str,
    timeout: float,
    json_output: bool,
    encoding_errors: str,
) -> None:
    """Run ``chatctl send --http`` to completion; errors carry their exit status."""
    sender = HttpSender(settings, room, kind=kind, timeout=timeout, json_output=json_output)
    try:
        if texts is not None:
            for text in texts:
                sender.send(text, None)
        else:
            for number, line in stdin_lines(encoding_errors):
                if line is None:
                    sys.stderr.write(
                        f"chatctl: line {number}: not sent: over 64 KiB or not UTF-8\n"
                    )
                    sender.rejected += 1
                elif line.strip():
                    sender.send(line, number)
    finally:
        sender.close()
    if sender.rejected:
        n = sender.rejected
        raise MessageRejected(f"{n} message{'s' if n != 1 else ''} not sent")
