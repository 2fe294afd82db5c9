"""Moderation across nodes (issue 26, part 4): two real ``chatctl serve`` processes on one
test-started redis-server. A kick or a ban made on node A closes the target's connection on
node B; a mute made on A refuses on B; a ban holds at B's handshake. Waits are on frames."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus

from support.helpers import RedisServer, ServeProcess, client, make_token, recv_type
from support.moderation import MOD, announcement, answer, closed

pytestmark = [pytest.mark.redis]


@pytest.fixture
def nodes() -> Iterator[list[ServeProcess]]:
    redis = RedisServer().start()
    procs: list[ServeProcess] = []
    try:
        args = ("--redis-url", redis.url, "--redis-prefix", "mod")
        procs = [ServeProcess(*args).start() for _ in range(2)]
        yield procs
    finally:
        for p in procs:
            p.stop()
        redis.cleanup()


async def test_kick_ban_and_mute_on_one_node_act_on_the_other(nodes: list[ServeProcess]) -> None:
    a, b = nodes[0].port, nodes[1].port
    async with (
        client(a, "general", "alice", token=MOD) as alice,
        client(b, "general", "bob") as bob,
        client(b, "general", "carol") as carol,
    ):
        for ws in (alice, bob, carol):
            await recv_type(ws, "welcome")
        kick = {"type": "moderate", "action": "kick", "user": "bob", "reason": "spam"}
        assert (await answer(alice, {**kick, "client_id": "k"}))["type"] == "ack"
        assert await closed(bob) == (4003, "kicked by alice: spam")
        assert (await announcement(carol))["message"] == "alice kicked bob: spam"

        mute = {"type": "moderate", "action": "mute", "user": "carol", "duration": "5m"}
        assert (await answer(alice, {**mute, "client_id": "m"}))["type"] == "ack"
        await announcement(carol)  # node B has it: it came through the room's log
        for n in range(3):
            error = await answer(carol, {"message": "hi", "client_id": f"c{n}"})
            assert error["code"] == "muted"
            assert error["reason"].startswith("muted in general by alice until ")

        async with client(b, "general", "bob") as bob:
            await recv_type(bob, "welcome")
            ban = {"type": "moderate", "action": "ban", "user": "bob", "reason": "again"}
            assert (await answer(alice, {**ban, "client_id": "b"}))["type"] == "ack"
            assert await closed(bob) == (4004, "banned by alice: again")
        for port in (b, a):
            with pytest.raises(InvalidStatus) as info:
                async with client(port, "general", "bob"):
                    pass
            assert info.value.response.status_code == 403
            assert info.value.response.body == b"banned from general by alice: again\n"
    assert "moderation: alice banned bob in general: again" in nodes[0].read_log()
    assert make_token("x") not in nodes[0].read_log()
