"""Moderation on one server (issue 26, part 4): kick, mute, ban and their undoing, delete,
and the bad input of part 6, with real websockets clients. Every answer is waited for as a
frame; nothing is synchronised by sleeping."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from chatctl.broker.sqlite import SQLiteBroker
from chatctl.server import ChatServer, ServerSettings
from support.curl import curl
from support.helpers import client, make_token, recv_type, verifier
from support.moderation import MOD, announcement, answer, closed, refused


async def test_kick_closes_every_connection_of_the_user_and_no_other(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "bob") as bob1,
        client(port, "general", "bob") as bob2,
        client(port, "general", "bob", receive="0", presence="0") as bob_writer,
        client(port, "other", "bob") as bob_elsewhere,
        client(port, "general", "carol") as carol,
    ):
        for ws in (alice, bob1, bob2, bob_writer, bob_elsewhere, carol):
            await recv_type(ws, "welcome")
        frame = {"type": "moderate", "action": "kick", "user": "bob", "reason": "spam"}
        ack = await answer(alice, {**frame, "client_id": "k1"})
        assert ack["type"] == "ack" and ack["client_id"] == "k1"
        told = await announcement(carol)
        assert told["id"] == ack["id"] and told["user"] == "alice"
        assert told["message"] == "alice kicked bob: spam"
        assert told["moderation"] == {"action": "kick", "target": "bob", "reason": "spam"}
        for ws in (bob1, bob2, bob_writer):
            assert await closed(ws) == (4003, "kicked by alice: spam")
        assert (await answer(carol, {"type": "ping", "data": 1}))["type"] == "pong"
        assert (await answer(bob_elsewhere, {"type": "ping", "data": 2}))["type"] == "pong"
        # the same request again (its client_id): acked as a duplicate, nobody kicked twice
        again = await answer(alice, {**frame, "client_id": "k1"})
        assert again["duplicate"] is True and again["id"] == ack["id"]
    # a kick is not a ban: bob comes back
    async with client(port, "general", "bob") as bob:
        welcome = await recv_type(bob, "welcome")
        assert welcome["history"][-1]["moderation"]["action"] == "kick"


async def test_a_mute_refuses_every_message_until_unmuted(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        mute = {"type": "moderate", "action": "mute", "user": "bob", "duration": "10m"}
        ack = await answer(alice, {**mute, "reason": "spam", "client_id": "m1"})
        assert ack["type"] == "ack"
        told = await announcement(bob)
        assert told["message"] == "alice muted bob for 10m: spam"
        until = told["moderation"]["until"]
        assert abs(until - (time.time() + 600)) < 5
        for n in range(5):  # hostile: new client ids do not help
            error = await answer(bob, {"message": f"spam {n}", "client_id": f"b{n}"})
            assert error["code"] == "muted" and error["client_id"] == f"b{n}"
            assert error["reason"].startswith("muted in general by alice until ")
            assert error["reason"].endswith(" left): spam")
            assert "retry_after" not in error and "blocked_by" not in error
        over_http = await curl(port, "/rooms/general/messages", "-d", "hi", token=make_token("bob"))
        assert over_http.status == 403 and over_http.json()["code"] == "muted"
        unmute = {"type": "moderate", "action": "unmute", "user": "bob", "client_id": "u"}
        assert (await answer(alice, unmute))["type"] == "ack"
        assert (await announcement(bob))["message"] == "alice unmuted bob"
        # the gate was never closed by the refusals: the next message is stored at once
        ok = await answer(bob, {"message": "sorry", "client_id": "b9"})
        assert ok["type"] == "ack"
        error = await answer(alice, {"type": "moderate", "action": "unmute", "user": "bob"})
        assert error["code"] == "not_found" and error["reason"] == "bob is not muted in general"


async def test_a_mute_ends_by_itself(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        mute = {"type": "moderate", "action": "mute", "user": "bob", "duration": 1}
        assert (await answer(alice, {**mute, "client_id": "m"}))["type"] == "ack"
        await announcement(bob)
        first = await answer(bob, {"message": "x", "client_id": "b0"})
        assert first["code"] == "muted"
        deadline = time.monotonic() + 5
        n = 0
        while True:  # refused until the mute's end, then stored
            n += 1
            got = await answer(bob, {"message": "x", "client_id": f"b{n}"})
            if got["type"] == "ack":
                break
            assert got["code"] == "muted" and time.monotonic() < deadline
            await asyncio.sleep(0.1)  # pacing the retries (the rate limit), not a sync


async def test_a_ban_closes_refuses_at_the_handshake_until_unbanned(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        ban = {"type": "moderate", "action": "ban", "user": "bob", "reason": "flooding"}
        assert (await answer(alice, {**ban, "client_id": "x"}))["type"] == "ack"
        assert await closed(bob) == (4004, "banned by alice: flooding")
        for _ in range(3):  # hostile: reconnecting again and again
            status, body = await refused(port, "general", "bob")
            assert (status, body) == (403, "banned from general by alice: flooding\n")
        stream = await curl(port, "/rooms/general/messages", token=make_token("bob"))
        assert stream.status == 403 and stream.json()["code"] == "forbidden"
        async with client(port, "other", "bob") as elsewhere:  # one room only
            await recv_type(elsewhere, "welcome")
        unban = {"type": "moderate", "action": "unban", "user": "bob", "client_id": "u"}
        assert (await answer(alice, unban))["type"] == "ack"
    async with client(port, "general", "bob") as bob:
        welcome = await recv_type(bob, "welcome")
        texts = [m["message"] for m in welcome["history"]]
        assert texts[-2:] == ["alice banned bob: flooding", "alice unbanned bob"]


async def test_a_ban_with_a_duration_says_until_when(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        ban = {"type": "moderate", "action": "ban", "user": "bob", "duration": "2h"}
        assert (await answer(alice, {**ban, "client_id": "x"}))["type"] == "ack"
        code, reason = await closed(bob)
        assert code == 4004 and reason is not None
        assert re.fullmatch(r"banned by alice until \d\d:\d\d UTC \((2h|1h59m\d+s) left\)", reason)
        status, body = await refused(port, "general", "bob")
        assert status == 403 and body.startswith("banned from general by alice until ")


async def test_delete_own_others_missing_and_as_moderator(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "bob") as bob,
        client(port, "general", "carol") as carol,
    ):
        for ws in (alice, bob, carol):
            await recv_type(ws, "welcome")
        one = await answer(bob, {"message": "oops", "client_id": "b1"})
        two = await answer(carol, {"message": "rude", "client_id": "c1"})
        error = await answer(carol, {"type": "delete", "id": one["id"], "client_id": "d0"})
        assert error["code"] == "forbidden" and error["client_id"] == "d0"
        assert "only a moderator of general" in error["reason"]
        error = await answer(carol, {"type": "delete", "id": 99})
        assert error["code"] == "not_found"
        ack = await answer(bob, {"type": "delete", "id": one["id"], "client_id": "d1"})
        assert ack["type"] == "ack"
        told = await announcement(carol)
        assert told["message"] == "bob deleted their own message (#1)"
        assert told["moderation"] == {"action": "delete", "target": "bob", "target_id": 1}
        error = await answer(bob, {"type": "delete", "id": one["id"]})
        assert error["code"] == "not_found"  # already deleted
        error = await answer(bob, {"type": "delete", "id": told["id"]})
        assert error["code"] == "not_found"  # an announcement is not deleted
        delete = {"type": "delete", "id": two["id"], "reason": "rude", "client_id": "d2"}
        assert (await answer(alice, delete))["type"] == "ack"
        told = await announcement(bob)
        assert told["message"] == "alice deleted a message of carol (#2): rude"
    async with client(port, "general", "dan", since="0") as dan:
        history = (await recv_type(dan, "welcome"))["history"]
        assert [(m["id"], m["message"], m.get("deleted")) for m in history[:2]] == [
            (1, "", True),
            (2, "", True),
        ]
        assert history[0]["user"] == "bob"
        page = await answer(dan, {"type": "history", "limit": 10})
        assert page["messages"] == history
    # a client resuming after the message it saw learns of its deletion
    async with client(port, "general", "carol", since=str(two["id"])) as back:
        history = (await recv_type(back, "welcome"))["history"]
        assert [m["moderation"]["target_id"] for m in history] == [1, 2]


async def test_bad_requests_change_nothing_and_the_connection_lives(server: ChatServer) -> None:
    port = server.port
    async with (
        client(port, "general", "alice", token=MOD) as alice,
        client(port, "general", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        for action in ("kick", "mute", "unmute", "ban", "unban"):  # hostile: no claim
            frame = {"type": "moderate", "action": action, "user": "alice", "client_id": action}
            if action == "mute":
                frame["duration"] = "1h"
            error = await answer(bob, frame)
            assert error == {
                "type": "error",
                "code": "forbidden",
                "reason": "token for bob does not moderate room general",
                "client_id": action,
            }
        mute = {"type": "moderate", "action": "mute", "user": "bob"}
        for bad in ("soon", "-5", "0", "400d", True):
            error = await answer(alice, {**mute, "duration": bad})
            assert error["code"] == "invalid_field" and error["reason"].startswith("duration")
        assert (await answer(alice, mute))["code"] == "missing_field"
        error = await answer(alice, {"type": "moderate", "action": "kick", "user": "b b"})
        assert error["code"] == "invalid_field" and error["reason"].startswith("user:")
        error = await answer(alice, {"type": "moderate", "action": "kick", "user": "alice"})
        assert error == {
            "type": "error",
            "code": "invalid_field",
            "reason": "a moderator cannot kick themselves",
        }
        assert (await answer(alice, {"type": "delete", "id": "1"}))["code"] == "invalid_field"
        # nothing happened: bob is there and writes, the room holds no announcement
        assert (await answer(bob, {"message": "still here", "client_id": "s"}))["type"] == "ack"
        assert (await answer(alice, {"type": "who"}))["users"] == ["alice", "bob"]
        page = await answer(alice, {"type": "history", "limit": 10})
        assert [m["message"] for m in page["messages"]] == ["still here"]


async def test_the_claim_is_per_room_and_never_for_a_conversation(server: ChatServer) -> None:
    port = server.port
    scoped = make_token("alice", mod_rooms=["team-*"])
    async with (
        client(port, "general", "alice", token=scoped) as general,
        client(port, "team-a", "alice", token=scoped) as team,
        client(port, "@bob", "alice", token=MOD) as dm,
    ):
        for ws in (general, team, dm):
            await recv_type(ws, "welcome")
        kick = {"type": "moderate", "action": "kick", "user": "bob"}
        assert (await answer(general, kick))["code"] == "forbidden"
        assert (await answer(team, {**kick, "client_id": "k"}))["type"] == "ack"
        error = await answer(dm, kick)
        assert error["code"] == "forbidden" and "conversation" in error["reason"]


async def test_state_survives_a_restart_on_sqlite(tmp_path: Path) -> None:
    def make() -> ChatServer:
        broker = SQLiteBroker(tmp_path / "chat.db")
        return ChatServer(ServerSettings(port=0), verifier(), broker)

    async with make() as first:
        port = first.port
        async with (
            client(port, "general", "alice", token=MOD) as alice,
            client(port, "general", "bob") as bob,
        ):
            await recv_type(alice, "welcome")
            await recv_type(bob, "welcome")
            sent = await answer(bob, {"message": "bad", "client_id": "b"})
            mute = {"type": "moderate", "action": "mute", "user": "bob", "duration": "1h"}
            assert (await answer(alice, {**mute, "client_id": "m"}))["type"] == "ack"
            ban = {"type": "moderate", "action": "ban", "user": "carol", "reason": "no"}
            assert (await answer(alice, {**ban, "client_id": "n"}))["type"] == "ack"
            delete = {"type": "delete", "id": sent["id"], "client_id": "d"}
            assert (await answer(alice, delete))["type"] == "ack"
    async with make() as second:
        port = second.port
        assert (await refused(port, "general", "carol"))[0] == 403
        async with client(port, "general", "bob") as bob:
            history = (await recv_type(bob, "welcome"))["history"]
            assert (history[0]["message"], history[0]["deleted"]) == ("", True)
            assert [m["moderation"]["action"] for m in history[1:]] == ["mute", "ban", "delete"]
            error = await answer(bob, {"message": "again", "client_id": "b2"})
            assert error["code"] == "muted"


async def test_the_http_api_ends_and_refuses_a_banned_users_stream(server: ChatServer) -> None:
    from support.curl import curl_stream

    events = "/rooms/general/events?token=" + make_token("bob")
    async with client(server.port, "general", "alice", token=MOD) as alice:
        await recv_type(alice, "welcome")
        async with curl_stream(server.port, events) as stream:
            await stream.until("welcome")
            ban = {"type": "moderate", "action": "ban", "user": "bob", "client_id": "b"}
            assert (await answer(alice, ban))["type"] == "ack"
            told = await stream.until("message")
            assert told["moderation"]["action"] == "ban"
            assert await stream.proc.wait() == 0  # the server ended the stream
        again = await curl(server.port, events.split("?")[0], token=make_token("bob"))
        assert again.status == 403 and again.json() == {
            "type": "error",
            "code": "forbidden",
            "reason": "banned from general by alice",
        }
        posted = await curl(
            server.port, "/rooms/general/messages", "-d", "x", token=make_token("bob")
        )
        assert posted.status == 403 and posted.json()["code"] == "forbidden"


def test_reasons_fit_a_close_frame_and_say_until_when() -> None:
    from chatctl.broker.base import SanctionEntry
    from chatctl.server.moderation import MAX_CLOSE_REASON, close_reason, refusal

    long = close_reason("kicked by alice: " + "é" * 200)
    assert len(long.encode()) <= MAX_CLOSE_REASON and long.endswith("...")
    assert close_reason("kicked by alice") == "kicked by alice"
    now = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC
    mute = SanctionEntry("bob", "mute", now + 600, "spam", "alice")
    assert (
        refusal("general", mute, now)
        == "muted in general by alice until 16:10 UTC (10m left): spam"
    )
    ban = SanctionEntry("bob", "ban", now + 2 * 86400, None, "alice")
    assert (
        refusal("general", ban, now)
        == "banned from general by alice until 2025-11-26 16:00 UTC (2d left)"
    )
    forever = SanctionEntry("bob", "ban", None, "no", "alice")
    assert refusal("general", forever, now) == "banned from general by alice: no"


async def test_moderation_is_counted_in_metrics(server: ChatServer) -> None:
    async with client(server.port, "general", "alice", token=MOD) as alice:
        await recv_type(alice, "welcome")
        for n, action in enumerate(("kick", "kick", "ban")):
            frame = {"type": "moderate", "action": action, "user": "bob", "client_id": f"{n}"}
            assert (await answer(alice, frame))["type"] == "ack"
    text = (await curl(server.port, "/metrics")).body.decode()
    assert 'chatctl_moderation_actions_total{action="kick"} 2.0' in text
    assert 'chatctl_moderation_actions_total{action="ban"} 1.0' in text


async def test_write_only_connections_are_moderated_in_a_room_nobody_reads(
    server: ChatServer,
) -> None:
    """No connection reads the room on the node (``?receive=0``): its sanctions are read from
    the broker, and a kick still closes the target's connection."""
    port, quiet = server.port, {"receive": "0", "presence": "0"}
    async with (
        client(port, "quiet", "alice", token=MOD, **quiet) as alice,
        client(port, "quiet", "bob", **quiet) as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        assert "quiet" not in server.hub.rooms
        mute = {"type": "moderate", "action": "mute", "user": "bob", "duration": "1h"}
        assert (await answer(alice, {**mute, "client_id": "m"}))["type"] == "ack"
        assert (await answer(bob, {"message": "x", "client_id": "b"}))["code"] == "muted"
        kick = {"type": "moderate", "action": "kick", "user": "bob", "client_id": "k"}
        assert (await answer(alice, kick))["type"] == "ack"
        assert (await closed(bob))[0] == 4003


async def test_in_a_conversation_each_deletes_their_own_messages_and_nothing_else(
    server: ChatServer,
) -> None:
    """A conversation has no moderators (not even a global one), but its two users delete
    their own messages there, as in a room."""
    port = server.port
    async with (
        client(port, "@bob", "alice", token=MOD) as alice,
        client(port, "@alice", "bob") as bob,
    ):
        await recv_type(alice, "welcome")
        await recv_type(bob, "welcome")
        mine = await answer(alice, {"message": "wrong window", "client_id": "a1"})
        theirs = await answer(bob, {"message": "hi", "client_id": "b1"})
        error = await answer(alice, {"type": "delete", "id": theirs["id"], "client_id": "d0"})
        assert error["code"] == "forbidden"
        assert error["reason"] == f"message #{theirs['id']} is bob's: only its author deletes it"
        kick = {"type": "moderate", "action": "kick", "user": "bob", "client_id": "k"}
        assert (await answer(alice, kick))["code"] == "forbidden"
        ack = await answer(alice, {"type": "delete", "id": mine["id"], "client_id": "d1"})
        assert ack["type"] == "ack"
        told = await announcement(bob)
        assert told["room"] == "@alice"  # each side names the conversation by the other
        assert told["moderation"] == {"action": "delete", "target": "alice", "target_id": 1}
    async with client(port, "@alice", "bob") as bob:
        history = (await recv_type(bob, "welcome"))["history"]
        assert [(m["id"], m["message"], m.get("deleted")) for m in history[:2]] == [
            (1, "", True),
            (2, "hi", None),
        ]
