"""The chaos checker on hand-made histories: a clean one passes, and each rule catches a
history made to break it (the checker is pure: no server needed)."""

from __future__ import annotations

from chatctl.bench.chaos.check import check
from chatctl.bench.chaos.history import (
    Ack,
    Connecting,
    Delivery,
    Disconnect,
    End,
    Event,
    Fault,
    History,
    Paged,
    Refusal,
    Send,
    Welcome,
)

R = "room"


def _d(receiver: str, conn: int, id_: int, text: str, epoch: str = "e1", **kw: object) -> Delivery:
    return Delivery(receiver, conn, R, id_, epoch, text, "s0", client_id=f"c-{text}", **kw)  # type: ignore[arg-type]


def _send(seq: int) -> list[Event]:
    return [Send("s0", R, f"s0#{seq}", seq, client_id=f"c-s0#{seq}")]


def _clean(durable: bool = True) -> list[Event]:
    ev: list[Event] = [
        Welcome("a", 1, R, "e1", 0),
        Welcome("b", 1, R, "e1", 0),
    ]
    for seq in (1, 2, 3):
        text = f"s0#{seq}"
        ev += _send(seq)
        ev += [_d("a", 1, seq, text), _d("b", 1, seq, text)]
        ev.append(Ack("s0", R, text, f"c-{text}", seq, epoch="e1"))
    # b is cut and resumes after id 1... no: after id 3, then gets 4 live
    ev += [Disconnect("b", 1, "cut"), Welcome("b", 2, R, "e1", 3, 3, "e1", True)]
    ev += _send(4)
    ev += [_d("a", 1, 4, "s0#4"), _d("b", 2, 4, "s0#4")]
    ev.append(Ack("s0", R, "s0#4", "c-s0#4", 4, epoch="e1"))
    ev += [End(), Welcome("final", 1, R, "e1", 4)]
    ev += [_d("final", 1, i, f"s0#{i}", history=True) for i in (1, 2, 3, 4)]
    return ev


def _history(events: list[Event], durable: bool = True) -> History:
    return History("test", durable, 7, list(events))


def _rules(events: list[Event], durable: bool = True) -> set[str]:
    return {v.rule for v in check(_history(events, durable))}


def test_a_clean_history_passes() -> None:
    assert check(_history(_clean())) == []
    assert check(_history(_clean(), durable=False)) == []


def test_a_resume_that_recovers_what_it_missed_passes() -> None:
    ev = _clean()
    # b misses 2 and 3 while cut, then gets them in its resumed welcome's history
    ev = [e for e in ev if not (isinstance(e, Delivery) and e.receiver == "b" and e.id in (2, 3))]
    cut = next(i for i, e in enumerate(ev) if isinstance(e, Disconnect))
    ev[cut + 1] = Welcome("b", 2, R, "e1", 3, 1, "e1", True)
    ev[cut + 2 : cut + 2] = [
        _d("b", 2, 2, "s0#2", history=True),
        _d("b", 2, 3, "s0#3", history=True),
    ]
    assert check(_history(ev)) == []


def test_an_epoch_change_after_a_memory_restart_passes() -> None:
    ev: list[Event] = [Welcome("a", 1, R, "e1", 0), *_send(1), _d("a", 1, 1, "s0#1")]
    ev += [Fault("node_kill", "n0", loses_history=True), Disconnect("a", 1, "1006")]
    ev += [Welcome("a", 2, R, "e2", 0, 1, "e1", False), *_send(2), _d("a", 2, 1, "s0#2", "e2")]
    ev += [End()]
    assert check(_history(ev, durable=False)) == []


def test_a_resume_after_an_epoch_change_with_nothing_new_passes() -> None:
    # seed 971717 on memory: a's welcome after the restart is not recovered (the new epoch
    # is empty), a is cut before any message, and resumes since 0 in the new epoch
    ev: list[Event] = [Welcome("a", 1, R, "e1", 0), *_send(1), _d("a", 1, 1, "s0#1")]
    ev += [Fault("node_kill", "n0", loses_history=True), Disconnect("a", 1, "1006")]
    ev += [Welcome("a", 2, R, "e2", 0, 1, "e1", False), Disconnect("a", 2, "cut")]
    ev += [Welcome("a", 3, R, "e2", 0, 0, "e2", True), *_send(2), _d("a", 3, 1, "s0#2", "e2")]
    ev += [End()]
    assert check(_history(ev, durable=False)) == []
    # or the new epoch had a message at the welcome, and the client resumes from before it
    ev = [Welcome("a", 1, R, "e1", 0), *_send(1), _d("a", 1, 1, "s0#1")]
    ev += [Fault("node_kill", "n0", loses_history=True), Disconnect("a", 1, "1006")]
    ev += [Welcome("b", 1, R, "e2", 0), *_send(2), _d("b", 1, 1, "s0#2", "e2")]
    ev += [Welcome("a", 2, R, "e2", 1, 1, "e1", False), Disconnect("a", 2, "cut")]
    ev += [Welcome("a", 3, R, "e2", 1, 0, "e2", True)]
    ev += [_d("a", 3, 1, "s0#2", "e2", history=True), End()]
    assert check(_history(ev, durable=False)) == []


def test_a_resume_past_what_a_new_epoch_had_is_caught() -> None:
    ev: list[Event] = [Welcome("a", 1, R, "e1", 0), *_send(1), _d("a", 1, 1, "s0#1")]
    ev += [Fault("node_kill", "n0", loses_history=True), Disconnect("a", 1, "1006")]
    ev += [Welcome("a", 2, R, "e2", 0, 1, "e1", False), Disconnect("a", 2, "cut")]
    ev += [Welcome("a", 3, R, "e2", 0, 5, "e2", True), End()]
    assert "gap" in _rules(ev, durable=False)


def test_a_skipped_id_is_a_gap() -> None:
    ev = [e for e in _clean() if not (isinstance(e, Delivery) and e.receiver == "a" and e.id == 2)]
    violations = check(_history(ev))
    assert {v.rule for v in violations} == {"gap"}
    assert "never id 2" in violations[0].detail
    assert any("seed 7" in line for line in violations[0].report(_history(ev)))


def test_a_redelivery_after_a_resume_is_caught() -> None:
    ev = _clean()
    cut = next(i for i, e in enumerate(ev) if isinstance(e, Disconnect))
    ev.insert(cut + 2, _d("b", 2, 3, "s0#3", history=True))
    assert "gap" in _rules(ev)


def test_ids_going_backwards_on_one_connection_are_caught() -> None:
    ev = _clean()
    ev.insert(ev.index(_d("a", 1, 3, "s0#3")) + 1, _d("a", 1, 2, "s0#2"))
    assert "id-order" in _rules(ev)


def test_receivers_seeing_different_messages_at_one_id_is_caught() -> None:
    ev = [_d("b", 1, 2, "s0#3") if e == _d("b", 1, 2, "s0#2") else e for e in _clean()]
    assert "same-id" in _rules(ev)


def test_one_message_stored_twice_is_caught() -> None:
    ev = _clean()
    end = next(i for i, e in enumerate(ev) if isinstance(e, End))
    ev[end:end] = [_d("a", 1, 5, "s0#4"), _d("b", 2, 5, "s0#4")]
    assert "duplicate" in _rules(ev)


def test_a_live_receiver_that_misses_the_last_message_is_caught() -> None:
    ev = [e for e in _clean() if e != _d("b", 2, 4, "s0#4")]
    assert _rules(ev) == {"not-delivered"}


def test_a_sender_stored_out_of_order_is_caught() -> None:
    ev = _clean()
    ev = [e for e in ev if not isinstance(e, Send)]
    ev[:0] = [*_send(1), *_send(3), *_send(2), *_send(4)]  # s0#3 was sent before s0#2
    assert _rules(ev) == {"sender-order"}


def test_an_epoch_change_on_a_durable_broker_is_caught() -> None:
    ev: list[Event] = [Welcome("a", 1, R, "e1", 0), *_send(1), _d("a", 1, 1, "s0#1")]
    ev += [Fault("node_kill", "n0", loses_history=True), Disconnect("a", 1, "1006")]
    ev += [Welcome("a", 2, R, "e2", 0, 1, "e1", False), End()]
    assert "epoch-change" in _rules(ev, durable=True)
    assert _rules(ev, durable=False) == set()


def test_an_epoch_change_without_a_restart_is_caught_on_memory() -> None:
    ev: list[Event] = [Welcome("a", 1, R, "e1", 0), Disconnect("a", 1, "cut")]
    ev += [Welcome("a", 2, R, "e2", 0, 0, "e1", False), End()]
    assert _rules(ev, durable=False) == {"epoch-change"}


def test_a_welcome_written_before_a_restart_and_read_after_it_passes_on_memory() -> None:
    """Soak seed 2047 (memory): b's connection opened, the node wrote its welcome (epoch e1),
    then the runner recorded a restart and the node died; the welcome came through a paused
    proxy after the fault, and the next one had the new node's e2. The change is explained
    by the restart after that connection was opened; the stale welcome may even come after
    a welcome of the new node."""
    ev: list[Event] = [Connecting("b", 1), Fault("node_term", "n0", loses_history=True)]
    ev += [Welcome("b", 1, R, "e1", 0), Disconnect("b", 1, "1006")]
    ev += [Connecting("a", 1), Welcome("a", 1, R, "e2", 0), End()]
    assert _rules(ev, durable=False) == set()
    stale_last: list[Event] = [Connecting("b", 1), Fault("node_term", "n0", loses_history=True)]
    stale_last += [Connecting("a", 1), Welcome("a", 1, R, "e2", 0)]
    stale_last += [Welcome("b", 1, R, "e1", 0), Disconnect("b", 1, "1006"), End()]
    assert _rules(stale_last, durable=False) == set()


def test_an_epoch_change_with_the_restart_before_both_connections_is_caught() -> None:
    """Both connections opened after the last restart: both welcomes tell the room after
    it, so their epochs differ for no reason."""
    ev: list[Event] = [Fault("node_term", "n0", loses_history=True), Connecting("b", 1)]
    ev += [Welcome("b", 1, R, "e1", 0), Connecting("a", 1), Welcome("a", 1, R, "e2", 0), End()]
    assert _rules(ev, durable=False) == {"epoch-change"}


def test_recovered_false_in_the_same_epoch_is_caught() -> None:
    ev = _clean()
    ev = [
        Welcome("b", 2, R, "e1", 3, 3, "e1", False) if isinstance(e, Welcome) and e.conn == 2 else e
        for e in ev
    ]
    assert _rules(ev) == {"recovered"}


def test_recovered_true_across_an_epoch_change_is_caught() -> None:
    ev: list[Event] = [Welcome("a", 1, R, "e1", 0), Fault("node_kill", "n0", True)]
    ev += [Disconnect("a", 1), Welcome("a", 2, R, "e2", 0, 0, "e1", True), End()]
    assert _rules(ev, durable=False) == {"recovered"}


def test_an_ack_for_another_message_is_caught() -> None:
    ev = [
        Ack("s0", R, "s0#2", "c-s0#2", 3, epoch="e1")
        if e == Ack("s0", R, "s0#2", "c-s0#2", 2, epoch="e1")
        else e
        for e in _clean()
    ]
    assert "ack-mismatch" in _rules(ev)


def test_an_ack_whose_message_is_gone_at_the_end_is_caught() -> None:
    ev = [e for e in _clean() if e != _d("final", 1, 2, "s0#2", history=True)]
    assert _rules(ev) == {"acked-lost"}


def test_an_ack_without_text_or_epoch_is_resolved_from_deliveries() -> None:
    ev = [
        Ack("s0", R, None, "c-s0#4", 4) if isinstance(e, Ack) and e.id == 4 else e for e in _clean()
    ]
    ev = [e for e in ev if e != _d("final", 1, 4, "s0#4", history=True)]
    assert _rules(ev) == {"acked-lost"}


def test_a_message_refused_as_not_stored_then_stored_is_caught() -> None:
    ev = _clean()
    at = ev.index(_d("a", 1, 2, "s0#2"))
    ev.insert(at, Refusal("s0", R, "c-s0#2", "broker_unavailable", text="s0#2"))
    assert _rules(ev) == {"refused-stored"}
    ev.insert(at + 1, Send("s0", R, "s0#2", 2, client_id="c-s0#2"))  # sent again: fine
    assert _rules(ev) == set()


def test_a_refusal_marked_stored_unknown_may_be_stored() -> None:
    ev = _clean()
    at = ev.index(_d("a", 1, 2, "s0#2"))
    unknown = Refusal("s0", R, "c-s0#2", "broker_unavailable", text="s0#2", stored="unknown")
    ev.insert(at, unknown)
    assert _rules(ev) == set()
    ev.insert(at + 1, Refusal("s0", R, "c-s0#2", "broker_unavailable", text="s0#2"))
    assert _rules(ev) == {"refused-stored"}  # the unmarked one after it still promises


def test_a_message_nobody_sent_is_caught() -> None:
    ev = _clean()
    end = next(i for i, e in enumerate(ev) if isinstance(e, End))
    ev[end:end] = [_d("a", 1, 5, "ghost"), _d("b", 2, 5, "ghost")]
    assert _rules(ev) == {"phantom"}


def _paged(paging: list[Event], deliveries: list[int]) -> list[Event]:
    """``_clean`` with b missing 2 and 3 while cut, its resume since 1 welcomed with
    ``recovered: false, more: true`` and the history 3 (2 left out to fit the bound), then
    ``paging`` and b's deliveries of ``deliveries`` on that connection (2 and 3 as history)."""
    ev = _clean()
    ev = [e for e in ev if not (isinstance(e, Delivery) and e.receiver == "b" and e.id in (2, 3))]
    cut = next(i for i, e in enumerate(ev) if isinstance(e, Disconnect))
    ev[cut + 1] = Welcome("b", 2, R, "e1", 3, 1, "e1", False, more=True)
    got = [_d("b", 2, i, f"s0#{i}", history=True) for i in deliveries if i < 4]
    ev[cut + 2 : cut + 2] = [*paging, *got]
    if 4 not in deliveries:
        ev = [e for e in ev if not (isinstance(e, Delivery) and e.receiver == "b" and e.id == 4)]
    return ev


def test_a_resume_cut_to_fit_and_paged_back_to_since_passes() -> None:
    ev = _paged([Paged("b", 2, 1, 2, "e1", True)], [2, 3, 4])
    assert check(_history(ev)) == []
    assert check(_history(ev, durable=False)) == []


def test_a_paged_resume_whose_connection_ends_while_paging_passes() -> None:
    # no Paged event, no delivery on that connection: the receiver resumes again from 1
    ev = _paged([], [4])
    ev = [e for e in ev if not (isinstance(e, Delivery) and e.receiver == "b" and e.conn == 2)]
    at = next(i for i, e in enumerate(ev) if isinstance(e, Welcome) and e.conn == 2)
    ev[at + 1 : at + 1] = [
        Disconnect("b", 2, "1006"),
        Welcome("b", 3, R, "e1", 3, 1, "e1", True),
        _d("b", 3, 2, "s0#2", history=True),
        _d("b", 3, 3, "s0#3", history=True),
    ]
    live = next(i for i, e in enumerate(ev) if isinstance(e, Delivery) and e.id == 4)
    ev.insert(live + 1, _d("b", 3, 4, "s0#4"))
    assert check(_history(ev)) == []


def test_a_paging_that_stops_short_of_since_is_caught() -> None:
    # more: false at id 3 although the welcome said everything after 1 is kept
    ev = _paged([Paged("b", 2, 1, 3, "e1", False)], [])
    assert _rules(ev) == {"recovered"}
    assert _rules(ev, durable=False) == {"recovered"}


def test_a_paged_resume_that_skips_or_repeats_an_id_is_caught() -> None:
    ev = _paged([Paged("b", 2, 1, 2, "e1", True)], [3, 4])  # claims 2 but never got it
    assert _rules(ev) == {"gap"}
    again = _paged([Paged("b", 2, 1, 2, "e1", True)], [2, 3, 4])
    at = next(
        i
        for i, e in enumerate(again)
        if isinstance(e, Delivery) and e.receiver == "b" and e.id == 3
    )
    again.insert(at + 1, _d("b", 2, 3, "s0#3", history=True))  # the page and the welcome both
    assert "gap" in _rules(again) and "id-order" in _rules(again)


def test_a_paging_into_another_epoch_is_caught_on_a_durable_broker() -> None:
    ev = _paged([Paged("b", 2, 1, 3, "e2", True)], [])
    assert _rules(ev) == {"epoch-change"}
    # on memory after a restart that lost the room, it is not a violation
    at = next(i for i, e in enumerate(ev) if isinstance(e, Paged))
    ev.insert(at, Fault("node_kill", "n0", loses_history=True))
    assert _rules(ev, durable=False) == set()


def test_more_across_an_epoch_change_is_caught() -> None:
    ev = _paged([Paged("b", 2, 1, 2, "e1", True)], [2, 3, 4])
    at = next(i for i, e in enumerate(ev) if isinstance(e, Welcome) and e.conn == 2)
    ev[at] = Welcome("b", 2, R, "e1", 3, 1, "e0", False, more=True)
    assert "recovered" in _rules(ev, durable=False)
