"""The outbox: client ids, acks, retryable and final errors."""

from __future__ import annotations

from chatctl.client.outbox import Outbox
from chatctl.protocol import Ack, ErrorCode, ErrorFrame


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
