"""Several rooms at once (``chatctl join general ops dev``): the server splits the user's
rate over the user's connections and tells each its share; each room's stream paces under
its own share, so the rooms together stay within the user's rate and nothing is refused."""

from __future__ import annotations

import asyncio
import time

from chatctl.client.events import Acked, Connected, Deferred, Event, Rejected
from chatctl.client.settings import resolve_settings
from chatctl.client.stream import RoomStream
from chatctl.server.limits import RateSettings
from support.helpers import make_server, make_token


async def test_each_room_paces_under_its_own_share_of_the_users_rate() -> None:
    rates = RateSettings(conn_rate=100, conn_burst=100, user_rate=9, user_burst=3)
    srv = make_server(rates=rates)
    async with srv:
        settings = resolve_settings(
            env={"CHATCTL_TOKEN": make_token("alice")}, server=f"ws://127.0.0.1:{srv.port}"
        )
        streams = [RoomStream(settings, room) for room in ("s1", "s2", "s3")]
        events: list[Event] = []
        connected = asyncio.Event()

        async def follow(stream: RoomStream) -> None:
            async with stream:
                async for event in stream:
                    events.append(event)
                    if sum(isinstance(e, Connected) for e in events) == len(streams):
                        connected.set()

        tasks = [asyncio.create_task(follow(s)) for s in streams]
        try:
            await asyncio.wait_for(connected.wait(), 10)
            # the first streams are told their smaller share when the others connect
            deadline = time.monotonic() + 5
            while any(s.sender.pacer is None or s.sender.pacer.rate > 3.0 for s in streams):
                assert time.monotonic() < deadline, [s.sender.pacer for s in streams]
                await asyncio.sleep(0.02)
            started = time.monotonic()
            for i in range(6):
                for s in streams:
                    s.add(f"{s.room} {i}")
            await asyncio.gather(*(s.write() for s in streams))
            while sum(isinstance(e, Acked) for e in events) < 18:
                assert time.monotonic() - started < 15, events
                await asyncio.sleep(0.02)
            assert not [e for e in events if isinstance(e, Deferred | Rejected)]
            # 18 messages under 9/s with a burst of 3: about 1.7 s, not all at once
            assert time.monotonic() - started > 1.2
        finally:
            for s in streams:
                await s.close()
            await asyncio.gather(*tasks, return_exceptions=True)
