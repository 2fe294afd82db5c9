"""A Server-Sent Events reader across a restart of a real ``chatctl serve``: the stream ends
with the drain, and ``Last-Event-ID`` resumes it on the restarted server without a gap or a
duplicate. The webhook token in the URL never reaches the log."""

from __future__ import annotations

import asyncio

import pytest

from chatctl.tokens.mint import mint
from support.curl import curl, curl_stream
from support.helpers import SECRET, ServeProcess, make_token


async def test_event_stream_resumes_across_a_restart() -> None:
    serve = await asyncio.to_thread(ServeProcess("--drain-timeout", "5").start)
    again = ServeProcess(port=serve.port, data_dir=serve.data_dir)
    port, alice = serve.port, make_token("alice")
    hook = "/hooks/" + mint(SECRET, "ci", ttl=3600, hook="general")
    path = "/rooms/general/events?token=" + make_token("bob")
    try:
        async with curl_stream(port, path) as stream:
            await stream.until("welcome")
            await curl(port, "/rooms/general/messages", "-d", "one", token=alice)
            await curl(port, hook, "-d", "two")
            seen = [await stream.until("message"), await stream.until("message")]
            assert [m["message"] for m in seen] == ["one", "two"]
            assert await asyncio.to_thread(serve.stop) == 0  # the stream does not hold it
            with pytest.raises(EOFError):
                await stream.event(timeout=10)
        await asyncio.to_thread(again.start)
        await curl(port, "/rooms/general/messages", "-d", "three", token=alice)
        resume = ("-H", f"Last-Event-ID: {seen[1]['_id']}")
        async with curl_stream(port, path, *resume) as stream:
            welcome = await stream.until("welcome")
            assert welcome["recovered"] is True
            assert (await stream.until("message"))["message"] == "three"
    finally:
        serve.stop()
        if again.proc is not None:
            again.stop()
    assert "eyJ" not in serve.read_log() + again.read_log()
