"""Fan-out writes one pre-serialised frame to plain connections and frames per connection
when an extension (permessage-deflate) is negotiated: every client must read the same."""

from __future__ import annotations

import json

from websockets.asyncio.client import connect

from chatctl.broker.memory import MemoryBroker
from chatctl.server import ChatServer, ServerSettings
from support.helpers import make_token, recv_type, verifier, ws_url


async def test_compressed_and_plain_clients_get_the_same_messages() -> None:
    srv = ChatServer(ServerSettings(port=0, compression=True), verifier(), MemoryBroker())
    async with srv:
        headers = {"Authorization": f"Bearer {make_token('alice')}"}
        url = ws_url(srv.port, "lobby")
        async with (
            connect(url, additional_headers=headers, compression="deflate") as zipped,
            connect(url, additional_headers=headers, compression=None) as plain,
        ):
            assert zipped.protocol.extensions and not plain.protocol.extensions
            await recv_type(zipped, "welcome")
            await recv_type(plain, "welcome")
            big = "x" * 5000  # several frames' worth, compressible
            for text in ("hello", big, "ünïcode ✓"):
                await plain.send(json.dumps({"type": "message", "message": text}))
                a = await recv_type(zipped, "message")
                b = await recv_type(plain, "message")
                assert a == b
                assert a["message"] == text
            assert srv.metrics.counters.deliveries >= 6
