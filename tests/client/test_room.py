"""RoomClient's resume bookkeeping: the URL of each connection, the history not seen yet."""

from __future__ import annotations

from chatctl.client.room import RoomClient
from chatctl.client.settings import resolve_settings
from chatctl.protocol import Message, Welcome
from support.helpers import make_token


def room_client(**kw: object) -> RoomClient:
    settings = resolve_settings(env={"CHATCTL_TOKEN": make_token("a")}, server="ws://h:1")
    return RoomClient(settings, "ops", **kw)  # type: ignore[arg-type]


def msg(i: int) -> Message:
    return Message(i, "ops", "b", str(i), 0.0)


def welcome(epoch: str, last: int, ids: list[int], recovered: bool | None = None) -> Welcome:
    return Welcome("a", "ops", epoch, last, [msg(i) for i in ids], [], recovered=recovered)


def test_resume_urls_and_history_without_duplicates() -> None:
    c = room_client(history=5)
    assert c.url() == "ws://h:1/ws/ops?history=5"
    c.connections = 1
    r = c.resume(welcome("e1", 7, [3, 4, 5, 6, 7]))
    assert [m.id for m in r.new_history] == [3, 4, 5, 6, 7] and not r.missed
    c.seen(msg(9))
    assert c.url() == "ws://h:1/ws/ops?since=9&epoch=e1"
    c.connections = 2
    r = c.resume(welcome("e1", 11, [8, 9, 10, 11], recovered=True))
    assert [m.id for m in r.new_history] == [10, 11] and r.reconnect and not r.missed
    r = c.resume(welcome("e2", 2, [1, 2], recovered=False))
    assert [m.id for m in r.new_history] == [1, 2] and r.missed and r.epoch_changed
    assert c.url() == "ws://h:1/ws/ops?since=2&epoch=e2"


def test_since_starts_the_first_connection() -> None:
    assert room_client(since=42).url() == "ws://h:1/ws/ops?since=42"
