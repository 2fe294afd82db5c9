"""Writing to client connections: the ONE module that reaches into websockets' internals.

websockets' documented way to send, ``await conn.send()``, waits for each connection's
buffer to drain: a fan-out loop over it stalls on the slowest client. Its own
:func:`websockets.asyncio.connection.broadcast` avoids that by driving the Sans-I/O
protocol object (``conn.protocol``) and flushing it (``conn.send_data()``) without awaiting;
this module does the same, and one step more on the fast path: a server's frames are not
masked, so without extensions (compression) one text frame serialised once is the same
bytes for every member, written straight to ``conn.transport``.

None of these attributes is documented API; they moved between websockets 16 and 17.
:data:`INTERNALS` lists every one this module uses, and tests/server/test_wire.py checks
them on a live connection, so an upgrade that drops one fails a test instead of a server.
Write order is websockets' rule, as in ``broadcast()``: nothing is written while a
fragmented message is being sent (``send_in_progress``), and a frame goes through the
protocol object when it still holds unsent bytes (``protocol.writes``).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import Server, ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import CONNECTING, State
from websockets.server import ServerProtocol

#: what this module uses beyond websockets' documented API, by the object that has it
INTERNALS: dict[str, tuple[str, ...]] = {
    "connection": (
        "protocol",
        "transport",
        "send_data",
        "send_in_progress",
        "connection_lost_waiter",
    ),
    "protocol": (
        "state",
        "extensions",
        "writes",
        "send_text",
        "fail",
        "data_to_send",
        "reader",  # reader.buffer: ChatConnection
    ),
    "transport": ("write", "abort", "get_write_buffer_size", "is_closing"),
}

_OPEN = State.OPEN
#: the context :func:`on_lost` callbacks run in: one for all connections, rather than the
#: copy of the current one asyncio makes for each (~64 bytes per connection). chatctl sets
#: no context variable, and asyncio runs future callbacks one at a time, never nested.
_LOST_CONTEXT = contextvars.Context()


def text_frame(data: bytes) -> bytes:
    """The whole unmasked WebSocket text frame carrying ``data`` (UTF-8 JSON)."""
    return Frame(Opcode.TEXT, data).serialize(mask=False)


def is_open(conn: ServerConnection) -> bool:
    """True while frames may be written (not closing, not closed)."""
    return conn.protocol.state is _OPEN


def frames_queued(conn: ServerConnection) -> int:
    """Frames received from ``conn`` and not yet taken by ``recv()``: while there are any,
    ``recv()`` returns at once, without letting the loop run anything else."""
    return len(conn.recv_messages.frames)


def pending(conn: ServerConnection) -> int:
    """Bytes written to ``conn`` that the kernel has not taken yet."""
    return conn.transport.get_write_buffer_size()


def blocked(conn: ServerConnection, max_pending: int) -> bool:
    """True when ``conn`` must not get another frame now: more than ``max_pending`` bytes
    wait for it, or a fragmented message is being sent (chatctl never sends one; if it ever
    did, a frame in its middle would break the stream)."""
    return conn.transport.get_write_buffer_size() > max_pending or conn.send_in_progress is not None


def send_text(conn: ServerConnection, data: bytes) -> None:
    """Queue one text frame for ``conn``, written at the end of this turn of the event loop
    without waiting for the client to read it.

    Frames queued in one turn go to the socket in one write: a burst of acks (the SQLite
    broker's group commit answers a whole transaction at once) costs one system call, not
    one each (the profile in docs/performance.md). Order is kept: the frames wait in
    websockets' protocol buffer, which :func:`broadcast` and every close flush first.
    The caller checked :func:`is_open` and :func:`blocked`."""
    protocol = conn.protocol
    flush_due = bool(protocol.writes)
    protocol.send_text(data)
    if not flush_due:
        asyncio.get_running_loop().call_soon(_flush, conn)


def _flush(conn: ServerConnection) -> None:
    """Write what :func:`send_text` queued, joined into one write (websockets' own
    ``send_data()`` writes each frame apart); an end-of-stream marker is left to it."""
    protocol = conn.protocol
    writes = protocol.writes
    if not writes or conn.transport.is_closing():
        return
    if b"" in writes:
        conn.send_data()
        return
    conn.transport.write(b"".join(protocol.data_to_send()))


def broadcast(
    conns: Iterable[ServerConnection], data: bytes, *, max_pending: int
) -> list[ServerConnection]:
    """Write one text frame to every open connection of ``conns`` without awaiting any.

    Returns the connections that did NOT get it because they are :func:`blocked`; the
    caller closes them. Closed and closing connections are skipped silently.
    """
    frame = text_frame(data)
    open_ = _OPEN
    skipped: list[ServerConnection] = []
    for conn in conns:
        protocol = conn.protocol
        if protocol.state is not open_:
            continue
        transport = conn.transport
        if transport.get_write_buffer_size() > max_pending or conn.send_in_progress is not None:
            skipped.append(conn)
            continue
        if protocol.extensions or protocol.writes:
            protocol.send_text(data)  # per-connection encoding, or keep the write order
            conn.send_data()
        else:
            transport.write(frame)
    return skipped


def close_now(conn: ServerConnection, code: int, reason: str, *, grace: float) -> bool:
    """Send a close frame now and drop the TCP connection ``grace`` seconds later unless the
    client closed it first. False (and nothing done) if ``conn`` is no longer open.

    For a client that does not read (slow consumer) or floods (abuse): ``conn.close()``
    would wait for its closing handshake behind everything it does not read or keeps
    sending. websockets' own close timeout only runs inside its send context, which a
    synchronous close cannot enter; the timer below is that timeout.
    """
    if conn.protocol.state is not _OPEN:
        return False
    conn.protocol.fail(code, reason)
    conn.send_data()
    timer = asyncio.get_running_loop().call_later(grace, conn.transport.abort)
    conn.connection_lost_waiter.add_done_callback(lambda _: timer.cancel())
    return True


def abort(conn: ServerConnection) -> None:
    """Drop the TCP connection at once, without a closing handshake."""
    conn.transport.abort()


def on_lost(conn: ServerConnection, callback: Callable[[object], None]) -> None:
    """Call ``callback`` (with an argument to ignore) once the TCP connection is gone, however
    it ended (also when the connection handler never runs, e.g. a client that leaves right
    after the 101). Pass a bound method rather than a lambda: it lives as long as the
    connection."""
    conn.connection_lost_waiter.add_done_callback(callback, context=_LOST_CONTEXT)


class _NoTransport(asyncio.Transport):
    """What :func:`warm_up`'s connection object is connected to: nothing (also what a
    connection handed to the HTTP API is left with)."""

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


class ChatConnection(ServerConnection):
    """websockets' server connection, holding back what a client sends after its request's
    head until the handshake is answered.

    websockets parses the bytes that follow the head as WebSocket frames at once, before
    the answer is written: a second pipelined HTTP request (two ``GET /healthz`` in one
    packet) fails the protocol meanwhile, and the first request got no answer and an
    "unexpected internal error" traceback in the log. Held back, those bytes are fed after a
    101 (a client that sent frames without waiting for it still works) and dropped after any
    other answer, which closes the connection (``Connection: close``): a pipelining client
    gets the answer to its first request, then EOF, and sends the others again (RFC 9112,
    9.3.2: a client must be ready to retry pipelined requests after a close).
    """

    #: bytes received after the request's head and before the answer (a class default: only
    #: a connection that pipelines gets one of its own)
    _held: bytes | None = None
    #: a request line not complete yet (see :meth:`_peek`)
    _line: bytes | None = None
    #: who takes a connection whose request line is not for websockets: ``takes_over(line)``
    #: says whether to, ``take(transport, data)`` serves it from then on (the HTTP API,
    #: set by :func:`connection_class`)
    takes_over: Callable[[bytes], bool] | None = None
    take: Callable[[asyncio.Transport, bytes], None] | None = None

    def data_received(self, data: bytes) -> None:
        if self.protocol.state is CONNECTING:
            if self._held is not None:
                self._held += data
                return
            if self.request is not None:  # the head is read, its answer not written yet
                self._held = data
                return
            if self.takes_over is not None:
                peeked = self._peek(data)
                if peeked is None:
                    return
                data = peeked
            # The reader keeps the unfinished line; the head ends at the first empty line.
            pending = bytes(self.protocol.reader.buffer)
            both = pending + data
            if both.startswith(b"\r\n"):
                end = 2
            elif (found := both.find(b"\r\n\r\n")) != -1:
                end = found + 4
            else:
                end = len(both)  # not all of it yet
            end -= len(pending)
            if 0 < end < len(data):
                self._held = data[end:]
                data = data[:end]
        super().data_received(data)

    def _peek(self, data: bytes) -> bytes | None:
        """Look at the request line before websockets parses it: the HTTP API takes the
        connection when its line is not for websockets (returns None), else the bytes go on
        to websockets. A line split across reads is held until it is whole.

        A line ends with the head's first CRLF; later reads of the same head start within
        the headers, which never look like a request line of the API (``METHOD SP /``)."""
        if self._line is not None:
            data = self._line + data
            del self._line
        end = data.find(b"\r\n")
        if end == -1:
            if len(data) < MAX_REQUEST_LINE and not self.protocol.reader.buffer:
                self._line = data
                return None
            return data
        assert self.takes_over is not None and self.take is not None
        if not self.protocol.reader.buffer and self.takes_over(data[:end]):
            transport = self.transport
            # websockets' handshake ends as for a client gone before its request; what it
            # aborts then is a stand-in, not the client's transport
            self.transport = _NoTransport()
            Connection.connection_lost(self, None)
            self.take(transport, data)
            return None
        return data

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await super().handshake(*args, **kwargs)
        held = self._held
        if held is not None:
            del self._held
            if self.protocol.state is _OPEN:
                super().data_received(held)


#: bytes a request line may take before it reaches websockets (which then refuses it)
MAX_REQUEST_LINE = 8192


def connection_class(
    takes_over: Callable[[bytes], bool], take: Callable[[asyncio.Transport, bytes], None]
) -> type[ChatConnection]:
    """:class:`ChatConnection` for one server, handing requests for which ``takes_over(line)``
    is true to ``take(transport, data)`` (the HTTP API: see ``server/httpapi/``)."""
    return type(
        "ChatConnection",
        (ChatConnection,),
        {"takes_over": staticmethod(takes_over), "take": staticmethod(take)},
    )


def warm_up(server: Server, cls: type[ChatConnection] = ChatConnection) -> ServerConnection:
    """Before clients connect, have one throwaway connection object set every attribute a
    live one has (returned, for tests), so that a connect storm does not cost every
    connection a private attribute dict (~1.3 KiB each, for the life of the process).

    CPython 3.11 keeps one table of attribute names for all instances of a class, and stops
    adding names to it after the first few instances (its spare room shrinks with each new
    one). In a storm (a restarted node's clients coming back, a benchmark), dozens of
    ``ServerConnection`` objects are made before the first one's ``connection_made`` sets
    ``recv_messages`` and ``transport``: those names then stay out of the shared table, and
    setting them gives every connection of the process a dict of its own
    (docs/performance.md, "Memory per idle connection"). Made first, this object puts them
    in while there is room.
    """
    conn = cls(ServerProtocol(), server)
    # websockets' Connection.connection_made sets the attributes; ServerConnection's own
    # would also start the opening handshake
    Connection.connection_made(conn, _NoTransport())
    return conn
