"""Connected clients: welcome, fan-out, acks, de-duplication, errors, resume."""

from __future__ import annotations

import asyncio
import json

from websockets.exceptions import ConnectionClosed

from chatctl.server import ChatServer
from support.helpers import client, make_server, recv_json, recv_messages, recv_type


async def test_welcome_then_own_message_echoed_to_everyone_in_one_order(
    server: ChatServer,
) -> None:
    async with (
        client(server.port, "general", "alice") as alice,
        client(server.port, "general", "bob") as bob,
    ):
        welcome = await recv_type(alice, "welcome")
        assert welcome["user"] == "alice" and welcome["room"] == "general"
        assert welcome["last_id"] == 0 and welcome["history"] == [] and welcome["epoch"]
        await recv_type(bob, "welcome")
        for i in range(5):
            await alice.send(json.dumps({"message": f"a{i}"}))
            await bob.send(json.dumps({"message": f"b{i}"}))
        seen_a = await recv_messages(alice, 10)
        seen_b = await recv_messages(bob, 10)
        assert [m["id"] for m in seen_a] == list(range(1, 11))
        assert seen_a == seen_b
        assert {m["user"] for m in seen_a} == {"alice", "bob"}
        assert all(m["room"] == "general" and m["ts"] > 0 for m in seen_a)


async def test_rooms_are_separate(server: ChatServer) -> None:
    async with (
        client(server.port, "one", "alice") as one,
        client(server.port, "two", "bob") as two,
    ):
        await recv_type(one, "welcome")
        await recv_type(two, "welcome")
        await one.send(json.dumps({"message": "in one"}))
        await two.send(json.dumps({"message": "in two"}))
        assert (await recv_type(one, "message"))["message"] == "in one"
        m = await recv_type(two, "message")
        assert (m["message"], m["id"]) == ("in two", 1)


async def test_ack_names_client_id_and_assigned_id(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"type": "message", "message": "hi", "client_id": "c-1"}))
        ack = await recv_type(ws, "ack")
        assert ack["client_id"] == "c-1" and ack["id"] == 1 and ack["duplicate"] is False


async def test_duplicate_client_id_is_acked_again_but_delivered_once(server: ChatServer) -> None:
    async with (
        client(server.port, "general", "alice") as alice,
        client(server.port, "general", "bob") as bob,
    ):
        await recv_type(bob, "welcome")
        await recv_type(alice, "welcome")
        frame = json.dumps({"message": "once", "client_id": "dup-1"})
        await alice.send(frame)
        first = await recv_type(alice, "ack")
        # the same client id again, on a new connection of the same user (a retry)
        async with client(server.port, "general", "alice") as retry:
            await recv_type(retry, "welcome")
            await retry.send(frame)
            second = await recv_type(retry, "ack")
        assert second["id"] == first["id"] and second["duplicate"] is True
        await alice.send(json.dumps({"message": "next", "client_id": "dup-2"}))
        got = await recv_messages(bob, 2)
        assert [m["message"] for m in got] == ["once", "next"]
        assert [m["id"] for m in got] == [1, 2]


async def test_bad_frames_get_error_frames_and_the_connection_lives_on(
    server: ChatServer,
) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        cases = [
            ("{not json", "invalid_json"),
            ('{"type": "dance"}', "unknown_type"),
            ('{"type": "message"}', "missing_field"),
            ('{"message": "' + "x" * 9000 + '", "client_id": "big"}', "message_too_long"),
            ("[]", "invalid_frame"),
        ]
        for data, code in cases:
            await ws.send(data)
            err = await recv_type(ws, "error")
            assert err["code"] == code, data[:30]
        assert err.get("client_id") is None
        await ws.send(b"\x00\x01binary")
        assert (await recv_type(ws, "error"))["code"] == "invalid_frame"
        await ws.send(json.dumps({"message": "still here", "client_id": "ok"}))
        assert (await recv_type(ws, "ack"))["id"] == 1


async def test_oversized_frame_closes_with_1009() -> None:
    srv = make_server(max_frame_bytes=1024)
    async with srv, client(srv.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": "x" * 2000}))
        try:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        except ConnectionClosed:
            pass
        assert ws.close_code == 1009


async def test_who_ping_and_presence(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as alice:
        await recv_type(alice, "welcome")
        async with client(server.port, "general", "bob") as bob:
            welcome = await recv_type(bob, "welcome")
            assert welcome["users"] == ["alice", "bob"]
            joined = await recv_type(alice, "presence")
            assert (joined["event"], joined["user"]) == ("join", "bob")
            await alice.send('{"type": "who"}')
            assert (await recv_type(alice, "who"))["users"] == ["alice", "bob"]
            await alice.send('{"type": "ping", "data": 42}')
            assert (await recv_type(alice, "pong"))["data"] == 42
        left = await recv_type(alice, "presence")
        assert (left["event"], left["user"]) == ("leave", "bob")


async def test_action_messages_keep_their_kind(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": "waves", "kind": "action"}))
        assert (await recv_type(ws, "message"))["kind"] == "action"


async def test_welcome_carries_recent_history(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        for i in range(30):
            await ws.send(json.dumps({"message": f"m{i}"}))
        await recv_messages(ws, 30)
    async with client(server.port, "general", "bob") as ws:
        welcome = await recv_type(ws, "welcome")
        assert [m["message"] for m in welcome["history"]] == [f"m{i}" for i in range(10, 30)]
        assert welcome["last_id"] == 30
    async with client(server.port, "general", "bob", history=3) as ws:
        welcome = await recv_type(ws, "welcome")
        assert [m["id"] for m in welcome["history"]] == [28, 29, 30]


async def test_resume_gets_exactly_what_was_missed_then_live(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as alice:
        await recv_type(alice, "welcome")
        async with client(server.port, "general", "bob") as bob:
            await recv_type(bob, "welcome")
            for i in range(3):
                await alice.send(json.dumps({"message": f"m{i}"}))
            last_seen = (await recv_messages(bob, 3))[-1]["id"]
        for i in range(3, 6):
            await alice.send(json.dumps({"message": f"m{i}"}))
        await recv_messages(alice, 6)
        async with client(server.port, "general", "bob", since=last_seen) as bob:
            welcome = await recv_type(bob, "welcome")
            assert welcome["recovered"] is True and welcome["since"] == 3
            assert [m["message"] for m in welcome["history"]] == ["m3", "m4", "m5"]
            epoch = welcome["epoch"]
            await alice.send(json.dumps({"message": "live"}))
            live = await recv_type(bob, "message")
            assert (live["id"], live["message"]) == (7, "live")
        async with client(server.port, "general", "bob", since=7, epoch=epoch) as bob:
            welcome = await recv_type(bob, "welcome")
            assert welcome["recovered"] is True and welcome["history"] == []


async def test_resume_older_than_history_says_not_recovered() -> None:
    srv = make_server(history_size=5)
    async with srv:
        async with client(srv.port, "general", "alice") as ws:
            await recv_type(ws, "welcome")
            for i in range(12):
                await ws.send(json.dumps({"message": f"m{i}"}))
            await recv_messages(ws, 12)
        async with client(srv.port, "general", "bob", since=2) as ws:
            welcome = await recv_type(ws, "welcome")
            assert welcome["recovered"] is False
            assert [m["id"] for m in welcome["history"]] == [8, 9, 10, 11, 12]


async def test_resume_with_another_epoch_says_not_recovered(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": "one"}))
        await recv_messages(ws, 1)
    async with client(server.port, "general", "bob", since=0, epoch="stale") as ws:
        welcome = await recv_type(ws, "welcome")
        assert welcome["recovered"] is False
        assert [m["message"] for m in welcome["history"]] == ["one"]


async def test_after_an_epoch_change_the_welcome_starts_at_id_1() -> None:
    """Issue 11 item 1: the new epoch is news from its first id, not only the recent
    --welcome-history messages (before: ?since=3&epoch=<old> gave ids [8, 9, 10])."""
    srv = make_server(welcome_history=3)
    async with srv:
        async with client(srv.port, "general", "alice") as ws:
            await recv_type(ws, "welcome")
            for i in range(10):
                await ws.send(json.dumps({"message": f"m{i}"}))
            await recv_messages(ws, 10)
        async with client(srv.port, "general", "bob", since=3, epoch="old") as ws:
            welcome = await recv_type(ws, "welcome")
            assert welcome["recovered"] is False and welcome["epoch"] != "old"
            assert [m["id"] for m in welcome["history"]] == list(range(1, 11))


async def test_clients_joining_mid_stream_see_no_gap_and_no_duplicate(server: ChatServer) -> None:
    """Whatever is published after a client's welcome `last_id` reaches it exactly once, even
    when it connects while messages are flowing (history=0: nothing comes from history)."""
    total = 300
    async with client(server.port, "general", "sender") as sender:
        await recv_type(sender, "welcome")

        async def pump() -> None:
            for i in range(total):
                await sender.send(json.dumps({"message": f"m{i}"}))
                if i % 10 == 0:
                    await asyncio.sleep(0)

        async def joiner() -> None:
            async with client(server.port, "general", "late", history=0) as ws:
                first = await recv_json(ws)
                assert first["type"] == "welcome"
                expected = first["last_id"] + 1
                while expected <= total:
                    frame = await recv_json(ws)
                    if frame["type"] == "message":
                        assert frame["id"] == expected
                        expected += 1

        pump_task = asyncio.create_task(pump())
        await asyncio.gather(*(joiner() for _ in range(8)), pump_task)


async def test_unacked_message_without_client_id_still_delivered(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": "no ack wanted"}))
        frame = await recv_type(ws, "message")
        assert "client_id" not in frame
        await ws.send(json.dumps({"message": "marker", "client_id": "m"}))
        kinds = [(await recv_json(ws))["type"] for _ in range(2)]
        assert sorted(kinds) == ["ack", "message"]


async def test_a_send_only_client_is_neither_listed_nor_announced(server: ChatServer) -> None:
    async with client(server.port, "general", "alice") as alice:
        await recv_type(alice, "welcome")
        async with client(server.port, "general", "cron-bot", presence=0, receive=0) as bot:
            welcome = await recv_type(bot, "welcome")
            assert welcome["users"] == ["alice"]
            await bot.send(json.dumps({"message": "backup done", "client_id": "b1"}))
            assert (await recv_type(bot, "ack"))["id"] == 1
        # alice sees the message and nothing about the bot coming or going
        frame = await recv_json(alice)
        assert (frame["type"], frame["user"]) == ("message", "cron-bot")
        await alice.send('{"type": "who"}')
        assert await recv_json(alice) == {"type": "who", "room": "general", "users": ["alice"]}
