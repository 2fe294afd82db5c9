"""The client core's pure parts: backoff, resume bookkeeping, the outbox."""

from __future__ import annotations

from chatctl.client.core import Backoff, Outbox, RoomClient
from chatctl.client.settings import resolve_settings
from chatctl.protocol import Ack, ErrorCode, ErrorFrame, Message, Welcome
from support.helpers import make_token


def test_backoff_is_capped_exponential_with_jitter() -> None:
    b = Backoff(initial=0.2, cap=10.0)
    delays = [b.next() for _ in range(12)]
    for n, d in enumerate(delays):
        base = min(10.0, 0.2 * 2**n)
        assert base / 2 <= d <= base
    assert max(delays) <= 10.0
    b.reset()
    assert b.next() <= 0.2


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


def test_outbox_ids_acks_retries_and_rejections() -> None:
    a, b = Outbox(), Outbox()
    p1, p2, p3 = a.add("one"), a.add("two", "action"), a.add("three")
    assert a.prefix != b.prefix and p1.client_id != b.add("one").client_id
    assert '"kind":"action"' in p2.frame and p1.client_id in p1.frame
    assert a.on_ack(Ack(p1.client_id, 1, "ops", 0.0, duplicate=True)) is p1
    assert a.duplicates == 1 and len(a) == 2
    busy = ErrorFrame(ErrorCode.BROKER_UNAVAILABLE, "busy", p2.client_id, retry_after=0.5)
    p, delay = a.on_error(busy)
    assert p is p2 and delay == 0.5 and p2.client_id in a.pending
    p, delay = a.on_error(ErrorFrame(ErrorCode.MESSAGE_TOO_LONG, "x", p3.client_id))
    assert p is p3 and delay is None and a.rejected == [(p3, "x")]
    assert [q.client_id for q in a.unacked()] == [p2.client_id]
