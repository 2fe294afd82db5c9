"""Chromium's own ``EventSource`` following a room over the HTTP API across a restart of the
server: it reconnects by itself with ``Last-Event-ID`` and gets every message once."""

from __future__ import annotations

import subprocess
from typing import Any

from support.helpers import ServeProcess, make_token, wait_until

FOLLOW = """([token]) => {
  window.got = [];
  window.welcomes = [];
  const events = new EventSource(`/rooms/general/events?token=${token}`);
  events.onmessage = (e) => window.got.push([e.lastEventId, JSON.parse(e.data).message]);
  events.addEventListener("welcome", (e) => window.welcomes.push(JSON.parse(e.data)));
}"""


def publish(port: int, text: str) -> None:
    url = f"http://127.0.0.1:{port}/rooms/general/messages"
    auth = f"Authorization: Bearer {make_token('alice')}"
    subprocess.run(["curl", "-fsS", "-H", auth, "-d", text, url], check=True, capture_output=True)


def test_eventsource_resumes_across_a_restart(open_page: Any) -> None:
    serve = ServeProcess("--drain-timeout", "5").start()
    again = ServeProcess(port=serve.port, data_dir=serve.data_dir)
    try:
        page = open_page(
            f"http://127.0.0.1:{serve.port}/healthz",
            allow_errors=("ERR_CONNECTION_REFUSED", "EventSource", "ERR_INCOMPLETE_CHUNKED"),
        )
        page.evaluate(FOLLOW, [make_token("bob")])
        wait_until(lambda: page.evaluate("window.welcomes.length") == 1)
        publish(serve.port, "one")
        publish(serve.port, "two")
        wait_until(lambda: page.evaluate("window.got.length") == 2)
        assert serve.stop() == 0
        again.start()
        publish(serve.port, "three")
        wait_until(lambda: page.evaluate("window.got.length") >= 3, timeout=20)
        got = page.evaluate("window.got")
        assert [text for _, text in got] == ["one", "two", "three"]
        epoch = got[0][0].split(":")[0]
        assert [eid for eid, _ in got] == [f"{epoch}:1", f"{epoch}:2", f"{epoch}:3"]
        welcomes = page.evaluate("window.welcomes")
        assert len(welcomes) == 2 and welcomes[1]["recovered"] is True
    finally:
        serve.stop()
        if again.proc is not None:
            again.stop()
