"""GET /rooms/{room}/messages, /rooms/{room}/users and /rooms with the real curl."""

from __future__ import annotations

import json

from chatctl.server import ChatServer
from support.curl import curl
from support.helpers import client, make_token, recv_type

MESSAGES = "/rooms/general/messages"


async def _publish(server: ChatServer, *texts: str) -> None:
    token = make_token("alice")
    for text in texts:
        assert (await curl(server.port, MESSAGES, "-d", text, token=token)).status == 201


async def test_history_since_and_limit(server: ChatServer) -> None:
    await _publish(server, "a", "b", "c", "d")
    token = make_token("bob")
    everything = (await curl(server.port, MESSAGES, token=token)).json()
    assert [m["message"] for m in everything["messages"]] == ["a", "b", "c", "d"]
    assert everything["last_id"] == 4 and everything["epoch"]
    since = (await curl(server.port, MESSAGES + "?since=2", token=token)).json()
    assert [m["id"] for m in since["messages"]] == [3, 4] and since["complete"] is True
    newest = (await curl(server.port, MESSAGES + "?limit=2", token=token)).json()
    assert [m["message"] for m in newest["messages"]] == ["c", "d"]
    older = (await curl(server.port, MESSAGES + "?before=4&limit=2", token=token)).json()
    assert [m["message"] for m in older["messages"]] == ["b", "c"]
    oldest = (await curl(server.port, MESSAGES + "?before=2", token=token)).json()
    assert [m["id"] for m in oldest["messages"]] == [1]
    bad = await curl(server.port, MESSAGES + "?limit=0", token=token)
    assert bad.status == 400 and bad.json()["code"] == "invalid_field"


async def test_history_as_json_lines(server: ChatServer) -> None:
    await _publish(server, "a", "b")
    answer = await curl(
        server.port, MESSAGES, "-H", "Accept: application/x-ndjson", token=make_token("bob")
    )
    assert answer.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in answer.body.decode().splitlines()]
    assert [m["message"] for m in lines] == ["a", "b"]


async def test_history_needs_a_token_for_the_room(server: ChatServer) -> None:
    assert (await curl(server.port, MESSAGES)).status == 401
    other = make_token("bob", rooms=["ops"])
    assert (await curl(server.port, MESSAGES, token=other)).status == 403
    by_query = await curl(server.port, MESSAGES + "?token=" + make_token("bob"))
    assert by_query.status == 200


async def test_users_and_rooms(server: ChatServer) -> None:
    async with client(server.port, "general", "carol") as carol:
        await recv_type(carol, "welcome")
        async with client(server.port, "secret", "dave") as dave:
            await recv_type(dave, "welcome")
            users = await curl(server.port, "/rooms/general/users", token=make_token("bob"))
            assert users.json() == {"room": "general", "users": ["carol"]}
            await _publish(server, "hi")
            token = make_token("bob", rooms=["gen*"])
            rooms = (await curl(server.port, "/rooms", token=token)).json()["rooms"]
            assert [(r["room"], r["last_id"], r["users"]) for r in rooms] == [("general", 1, 1)]
