"""server/wire.py relies on websockets internals: these tests fail the day one of them moves."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from chatctl.server import ChatServer, wire
from support.helpers import client, make_server, make_token, recv_type, ws_url


async def _member(srv: ChatServer, room: str) -> ServerConnection:
    (conn,) = srv.hub.rooms[room].ready
    return conn


@pytest.mark.parametrize("compression", [False, True])
async def test_every_internal_wire_uses_exists_on_a_live_connection(compression: bool) -> None:
    srv = make_server(compression=compression)
    async with srv:
        headers = {"Authorization": f"Bearer {make_token('alice')}"}
        async with connect(
            ws_url(srv.port, "lobby"),
            additional_headers=headers,
            compression="deflate" if compression else None,
        ) as ws:
            await recv_type(ws, "welcome")
            conn = await _member(srv, "lobby")
            owners = {"connection": conn, "protocol": conn.protocol, "transport": conn.transport}
            missing = [
                f"{owner}.{name}"
                for owner, names in wire.INTERNALS.items()
                for name in names
                if not hasattr(owners[owner], name)
            ]
            assert missing == [], f"websockets no longer has {missing}: update server/wire.py"
            # and they still mean what wire.py assumes
            assert conn.protocol.state is State.OPEN and wire.is_open(conn)
            assert conn.send_in_progress is None
            assert isinstance(conn.protocol.writes, list)
            assert bool(conn.protocol.extensions) is compression
            assert isinstance(conn.connection_lost_waiter, asyncio.Future)
            assert wire.pending(conn) == 0 and not wire.blocked(conn, 0)


def test_the_fast_path_frame_is_the_bytes_websockets_would_write() -> None:
    protocol = ServerProtocol()
    protocol.state = State.OPEN
    for data in (b"{}", json.dumps({"m": "x" * 200}).encode(), ("ü" * 40_000).encode()):
        protocol.send_text(data)
        assert protocol.data_to_send() == [wire.text_frame(data)]
    assert Opcode.TEXT.value == 1


async def test_broadcast_writes_to_open_members_and_hands_back_blocked_ones() -> None:
    srv = make_server()
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        conn = await _member(srv, "lobby")
        assert wire.broadcast([conn], b'{"type":"x","n":1}', max_pending=1 << 20) == []
        # over the bound: not written, handed back to be closed
        assert wire.broadcast([conn], b'{"type":"x","n":2}', max_pending=-1) == [conn]
        assert wire.broadcast([conn], b'{"type":"x","n":3}', max_pending=1 << 20) == []
        assert [json.loads(await ws.recv())["n"] for _ in range(2)] == [1, 3]


async def test_close_now_closes_at_once_and_only_once() -> None:
    srv = make_server()
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        conn = await _member(srv, "lobby")
        assert wire.close_now(conn, 4008, "slow consumer", grace=2.0)
        assert not wire.is_open(conn)
        assert not wire.close_now(conn, 1008, "again", grace=2.0)
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4008 and ws.close_reason == "slow consumer"


async def test_warm_up_sets_every_attribute_a_live_connection_has() -> None:
    """Else the names it missed stay out of the attribute table the connections share, and a
    connect storm costs each of them a dict of its own (wire.warm_up)."""
    srv = make_server()
    async with srv, client(srv.port, "lobby", "alice") as ws:
        await recv_type(ws, "welcome")
        live = await _member(srv, "lobby")
        assert srv._ws is not None
        warm = wire.warm_up(srv._ws)
        assert set(vars(live)) <= set(vars(warm)), "update wire.warm_up for this websockets"
