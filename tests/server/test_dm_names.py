"""Each side names a conversation by the other user in every frame it is sent (issue 26
part 1): ``@bob`` for alice and ``@alice`` for bob, in live messages and presence, in a
welcome's history and a ``history`` page, in the HTTP API's event stream and history.
Never the internal room (``+dm+alice+bob``), which no client could use."""

from __future__ import annotations

import json
from typing import Any

from chatctl.server import ChatServer
from support.curl import curl, curl_stream
from support.helpers import client, make_token, recv_type

INTERNAL = "+dm+"
#: a text that spells the field: it must come through as it was sent
TRICKY = 'a "room":"+dm+alice+bob" text'


def rooms_in(value: Any) -> set[str]:
    """Every ``room`` field anywhere in a decoded frame."""
    if isinstance(value, dict):
        found = {value["room"]} if isinstance(value.get("room"), str) else set()
        for item in value.values():
            found |= rooms_in(item)
        return found
    if isinstance(value, list):
        return set().union(*(rooms_in(item) for item in value)) if value else set()
    return set()


async def test_every_websocket_frame_names_the_other_side(server: ChatServer) -> None:
    port = server.port
    async with client(port, "@bob", "alice") as alice, client(port, "@alice", "bob") as bob:
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        await alice.send(json.dumps({"message": TRICKY, "client_id": "a"}))
        seen_by_bob = await recv_type(bob, "message")
        assert seen_by_bob["room"] == "@alice"
        assert seen_by_bob["message"] == TRICKY  # a text is not a field
        frames = [await recv_type(alice, "message"), await recv_type(alice, "ack")]
        assert {f["room"] for f in frames} == {"@bob"}
    async with client(port, "@alice", "bob") as bob:
        welcome = await recv_type(bob, "welcome")
        async with client(port, "@bob", "alice") as alice:
            await recv_type(alice, "welcome")
            presence = await recv_type(bob, "presence")
            assert presence["room"] == "@alice" and presence["user"] == "alice"
        await bob.send(json.dumps({"type": "history", "limit": 10}))
        page = await recv_type(bob, "history")
    assert rooms_in(welcome) == {"@alice"} and len(welcome["history"]) == 1
    assert rooms_in(page) == {"@alice"} and len(page["messages"]) == 1


async def test_the_http_api_names_the_other_side(server: ChatServer) -> None:
    port, alice, bob = server.port, make_token("alice"), make_token("bob")
    auth = ("-H", f"Authorization: Bearer {bob}")
    async with curl_stream(port, "/rooms/@alice/events", *auth) as stream:
        assert (await stream.until("welcome"))["room"] == "@alice"
        posted = await curl(port, "/rooms/@bob/messages", "-d", "over http", token=alice)
        assert posted.status in (200, 201, 202), posted
        live = await stream.until("message")
        assert live["room"] == "@alice" and live["message"] == "over http"
    read = await curl(port, "/rooms/@alice/messages", token=bob)
    assert rooms_in(read.json()) == {"@alice"}
    ndjson = ("-H", "Accept: application/x-ndjson")
    lines = await curl(port, "/rooms/@bob/messages", *ndjson, token=alice)
    body = lines.body.decode()
    assert lines.status == 200 and INTERNAL not in body
    assert {json.loads(line)["room"] for line in body.splitlines()} == {"@bob"}
