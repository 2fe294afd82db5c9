"""The reference server for ``chatctl bench``: websockets' own ``broadcast()`` relaying raw
frames, one process, rooms by path, no auth, no parsing, no history, no acks.

It is the practical ceiling for a Python websockets server: every text frame a client sends
to ``/ws/ROOM`` is written, unchanged and encoded once, to every open connection of ROOM
(the sender included, as chatctl does). It sends a minimal welcome,
``{"type":"welcome","reference":true}``, so clients that wait for one can start. Tokens are
accepted and ignored. Compression is off, as in ``chatctl serve``.

    python bench/reference_server.py --port 8300 [--uvloop]

Prints ``listening on ws://HOST:PORT/ws/{room}`` to stderr once it accepts connections and
stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

WELCOME = '{"type":"welcome","reference":true}'


async def main(host: str, port: int) -> None:
    rooms: dict[str, set[ServerConnection]] = {}

    async def handler(conn: ServerConnection) -> None:
        room = conn.request.path.partition("?")[0] if conn.request else "/"
        members = rooms.setdefault(room, set())
        members.add(conn)
        try:
            await conn.send(WELCOME)
            async for data in conn:
                broadcast(members, data)
        finally:
            members.discard(conn)
            if not members:
                rooms.pop(room, None)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve(handler, host, port, compression=None, max_size=64 * 1024) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on ws://{host}:{bound}/ws/{{room}}", file=sys.stderr, flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.host, args.port))
    else:
        asyncio.run(main(args.host, args.port))
