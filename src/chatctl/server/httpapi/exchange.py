"""One HTTP/1.1 connection of the API, parsed by h11: requests in, answers out, keep-alive.

:class:`HttpConnection` is the asyncio protocol a connection is handed to once its request
line shows it is not a WebSocket upgrade (server/wire.py peeks at it). One task per
connection reads requests one after another; each is given to ``handle`` as an
:class:`Exchange`, which reads the body on demand (so a token is checked before the body is
read) and writes either one whole answer or a stream (Server-Sent Events).

Limits, so that a slow or half-open client cannot hold the server:

- the request head within :data:`HEAD_TIMEOUT` seconds and :data:`MAX_HEAD_BYTES` bytes
  (408 / 431), also between two requests of a kept-alive connection (:data:`IDLE_TIMEOUT`);
- the body within :data:`BODY_TIMEOUT` seconds and the handler's size limit (408 / 413);
- a stream whose reader does not keep up (more than ``max_pending`` bytes unwritten) is
  closed;
- a stream whose client closed its side (EOF) ends at once: a Server-Sent Events reader
  sends nothing once its request is made, so its EOF means it is gone (it would otherwise
  stay a room member until a write to it failed, up to a keep-alive period later). A plain
  answer is still written after an EOF (a client may half-close after its request).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import h11

from chatctl.server.httpapi.answers import ApiError, Reply, Request

log = logging.getLogger("chatctl.server")

#: bytes a request head (request line and headers) may take
MAX_HEAD_BYTES = 16 * 1024
#: seconds a client has to send a request head once it started one
HEAD_TIMEOUT = 10.0
#: seconds a kept-alive connection may wait for its next request
IDLE_TIMEOUT = 30.0
#: seconds a client has to send a request body
BODY_TIMEOUT = 10.0


class Exchange:
    """One request and its answer (see the module docstring)."""

    def __init__(self, conn: HttpConnection, request: Request) -> None:
        self.conn = conn
        self.request = request
        self.streaming = False
        #: the route's label for /metrics (set by the router)
        self.route = "other"
        #: True to close the connection without an answer: a request websockets answers,
        #: which the client repeats on a new connection (set by the router)
        self.unanswered = False

    async def body(self, limit: int) -> bytes:
        """The whole body; :class:`ApiError` 413 past ``limit`` bytes, 408 if it is slow."""
        length = self.request.header("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError(413, "message_too_long", f"the body is over {limit} bytes")
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                return await self.conn.read_body(limit)
        except TimeoutError:
            raise ApiError(408, "timeout", "the body was not sent in time") from None

    def start_stream(self, content_type: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Answer 200 and keep the answer open; then :meth:`write` it piece by piece."""
        self.streaming = True
        self.conn._skip_ready_body()
        self.conn.send_head(
            self.request, 200, [("Content-Type", content_type), *headers], length=None
        )
        self.conn.stream_started()

    def write(self, data: bytes) -> bool:
        """Write part of a streamed answer; False once the client is gone or too slow."""
        return self.conn.send_data(data)

    def end(self) -> None:
        """End a streamed answer properly (its last chunk) and close the connection."""
        self.conn.finish()

    @property
    def closed(self) -> asyncio.Future[None]:
        """Done when the TCP connection is gone."""
        return self.conn.lost


#: what answers one request: its :class:`Reply`, or None once it streamed its own
Handler = Callable[[Exchange], Awaitable["Reply | None"]]
#: counts one answered request: (route, status)
Count = Callable[[str, int], None]


class HttpConnection(asyncio.Protocol):
    """h11 on one TCP connection (see the module docstring)."""

    def __init__(
        self,
        handle: Handler,
        *,
        server_name: str,
        max_pending: int,
        count: Count,
        forget: Callable[[HttpConnection], None],
    ) -> None:
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.handle = handle
        self.server_name = server_name.encode()
        self.max_pending = max_pending
        self.count = count
        self.forget = forget
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = loop.create_future()
        self._readable = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        #: the client closed its side (EOF): a stream is ended, a plain answer still written
        self._eof = False
        #: an answer is being streamed (Server-Sent Events)
        self._streaming = False

    # ------------------------------------------------------------- asyncio protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport; not always an asyncio.Transport instance: uvloop's are not
        self.transport = cast(asyncio.Transport, transport)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._readable.set()
        if len(self.h11.trailing_data[0]) > MAX_HEAD_BYTES and self.transport is not None:
            self._paused = True  # read no more than one request ahead
            self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self._eof = True
        self.h11.receive_data(b"")
        self._readable.set()
        if self._streaming:
            self._abort()  # the reader is gone: end its stream now, not at a failed write
            return False
        return True  # half-closed: the answer may still be written

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self._readable.set()
        self.forget(self)

    def stream_started(self) -> None:
        """An answer is streamed from now on: the client's EOF ends it (also one that came
        while the handler prepared the stream)."""
        self._streaming = True
        if self._eof:
            self._abort()

    def _abort(self) -> None:
        """Drop the connection at once, unwritten data too (connection_lost follows, so
        the stream ends however full the write buffer is)."""
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Close the connection (a stream ends; an answer being written is cut)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # ------------------------------------------------------------------- reading

    async def _next_event(self) -> Any:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise ApiError(
                    exc.error_status_hint, "bad_request", f"bad request: {exc}"
                ) from None
            if event is not h11.NEED_DATA:
                return event
            if self.lost.done():
                return h11.ConnectionClosed()
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            self._readable.clear()
            await self._readable.wait()

    async def read_body(self, limit: int) -> bytes:
        if self.h11.they_are_waiting_for_100_continue:  # curl's Expect for bodies over 1 KiB
            self._write(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
        body = bytearray()
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    raise ApiError(413, "message_too_long", f"the body is over {limit} bytes")
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
            else:
                raise ApiError(400, "bad_request", "bad request: the body ended early")

    def _skip_ready_body(self) -> None:
        """Read past a body the handler did not need if it has all arrived (a request
        without a body ends at once), so that the connection can serve the next one."""
        while self.h11.their_state is h11.SEND_BODY:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                return
            if event is h11.NEED_DATA or isinstance(event, h11.EndOfMessage):
                return

    async def _run(self) -> None:
        try:
            while not self.lost.done():
                first = self.h11.their_state is h11.IDLE and not self.h11.trailing_data[0]
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT if first else HEAD_TIMEOUT):
                        event = await self._next_event()
                except TimeoutError:
                    if self.h11.trailing_data[0]:
                        self._error_then_close(ApiError(408, "timeout", "request head too slow"))
                    self.close()
                    return
                except ApiError as exc:
                    self._error_then_close(exc)
                    return
                if not isinstance(event, h11.Request):
                    self.close()
                    return
                # h11 bounds a head that arrives in pieces; this, one that came whole
                size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
                if size > MAX_HEAD_BYTES:
                    self._error_then_close(ApiError(431, "bad_request", "request head too large"))
                    return
                if not await self._exchange(_request(event)):
                    self.close()
                    return
        except Exception:
            log.error("HTTP connection failed", exc_info=True)
            self.close()

    async def _exchange(self, request: Request) -> bool:
        """Answer one request; False when the connection is to be closed after it."""
        exchange = Exchange(self, request)
        try:
            reply = await self.handle(exchange)
        except ApiError as exc:
            reply = exc.reply()
        except Exception as exc:
            log.error("HTTP request failed: %s: %r", type(exc).__name__, str(exc)[:200])
            log.debug("the request's traceback", exc_info=True)
            reply = ApiError(500, "internal", "internal error").reply()
        if exchange.streaming:
            self.count(exchange.route, 200)
            return False
        if reply is None and exchange.unanswered:
            return False
        assert reply is not None
        self.count(exchange.route, reply.status)
        if self.lost.done():
            return False
        self._skip_ready_body()
        self.send_reply(request, reply)
        if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is not h11.DONE:
            return False
        self.h11.start_next_cycle()
        return True

    # ------------------------------------------------------------------- writing

    def _write(self, event: Any) -> None:
        data = self.h11.send(event)
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_head(
        self,
        request: Request,
        status: int,
        headers: list[tuple[str, str]],
        *,
        length: int | None,
    ) -> None:
        all_headers = [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Server", self.server_name.decode()),
            *headers,
        ]
        if length is not None:
            all_headers.append(("Content-Length", str(length)))
        closing = any(k.lower() == "connection" for k, _ in headers)
        if not closing and self.h11.their_state not in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED):
            # the body was not read (refused before it): the connection cannot be reused
            all_headers.append(("Connection", "close"))
        self._write(h11.Response(status_code=status, headers=all_headers, reason=_phrase(status)))

    def send_reply(self, request: Request, reply: Reply) -> None:
        headers = list(reply.headers)
        if reply.body or reply.status not in (204, 304):
            headers.append(("Content-Type", reply.content_type))
        self.send_head(request, reply.status, headers, length=len(reply.body))
        if request.method != "HEAD" and reply.body:
            self._write(h11.Data(data=reply.body))
        self._write(h11.EndOfMessage())

    def send_data(self, data: bytes) -> bool:
        transport = self.transport
        if self.lost.done() or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > self.max_pending:
            log.warning("HTTP stream closed: the client does not read (slow consumer)")
            self.close()
            return False
        self._write(h11.Data(data=data))
        return True

    def finish(self) -> None:
        """End the answer being streamed, if any, then close the connection."""
        if self.h11.our_state is h11.SEND_BODY and not self.lost.done():
            self._write(h11.EndOfMessage())
        self.close()

    def _error_then_close(self, exc: ApiError) -> None:
        self.count("bad_request", exc.status)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            with contextlib.suppress(h11.LocalProtocolError):
                reply = exc.reply()
                self._write(
                    h11.Response(
                        status_code=exc.status,
                        reason=_phrase(exc.status),
                        headers=[
                            ("Content-Type", reply.content_type),
                            ("Content-Length", str(len(reply.body))),
                            ("Connection", "close"),
                        ],
                    )
                )
                self._write(h11.Data(data=reply.body))
                self._write(h11.EndOfMessage())
        self.close()


def _request(event: h11.Request) -> Request:
    target = event.target.decode("latin-1")
    parts = urlsplit(target)
    return Request(
        method=event.method.decode("ascii"),
        target=target,
        path=parts.path,
        query=parse_qs(parts.query, keep_blank_values=True),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers],
        http_version=event.http_version.decode("ascii"),
    )


def _phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
