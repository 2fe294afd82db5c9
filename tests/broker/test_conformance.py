"""The one conformance suite every broker passes (see chatctl.broker.base for the contract).

The ``broker`` fixture is parametrised over every broker of ``chatctl.broker.BROKERS`` (the
registry ``create_broker`` reads): a new broker is tested as soon as it is registered,
started as its entry's ``test`` hook says (tests/support/broker_services.py provides what
the hook asks for).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from chatctl.broker import BROKERS, Broker, create_broker
from chatctl.broker.base import CountsRooms, PeeksRooms
from chatctl.broker.registry import option_keywords
from chatctl.errors import UsageError
from support.broker_services import BrokerServices, entry_named
from support.brokers import Sink

HISTORY = 5


@pytest.fixture(params=[entry.name for entry in BROKERS])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """Each registered broker, started as its registry entry's test hook says (brokers sharing
    one store get a fresh key prefix per test from the hook)."""
    entry = entry_named(request.param)
    services = BrokerServices(request, lambda: request.getfixturevalue("module_redis"))
    target = entry.test(services)
    options = {"history_size": HISTORY, "dedup_window": 60.0}
    b = create_broker(target.url, **options, **option_keywords(target.options))
    await b.start()
    try:
        yield b
    finally:
        await b.close()


async def test_ids_are_per_room_and_strictly_increasing(broker: Broker) -> None:
    a1 = await broker.publish("a", "alice", "one")
    a2 = await broker.publish("a", "alice", "two")
    b1 = await broker.publish("b", "bob", "uno")
    assert (a1.message.id, a2.message.id, b1.message.id) == (1, 2, 1)
    assert a2.message.room == "a" and a2.message.user == "alice" and a2.message.text == "two"
    assert not a1.duplicate
    assert a1.message.ts > 0


async def test_subscriber_gets_every_message_once_in_order(broker: Broker) -> None:
    sink = Sink()
    await broker.subscribe("room", sink)
    for i in range(20):
        await broker.publish("room", "alice", f"m{i}")
    await sink.wait_for(lambda s: len(s.messages) >= 20)
    assert [m.id for m in sink.messages] == list(range(1, 21))
    assert [m.text for m in sink.messages] == [f"m{i}" for i in range(20)]


async def test_other_rooms_are_not_delivered(broker: Broker) -> None:
    sink = Sink()
    await broker.subscribe("mine", sink)
    await broker.publish("other", "alice", "not for you")
    await broker.publish("mine", "alice", "for you")
    await sink.wait_for(lambda s: len(s.messages) >= 1)
    assert [m.text for m in sink.messages] == ["for you"]


async def test_unsubscribe_stops_delivery(broker: Broker) -> None:
    sink = Sink()
    await broker.subscribe("room", sink)
    await broker.publish("room", "alice", "before")
    await sink.wait_for(lambda s: len(s.messages) == 1)
    await broker.unsubscribe("room")
    await broker.publish("room", "alice", "after")
    marker = Sink()
    await broker.subscribe("marker", marker)
    await broker.publish("marker", "alice", "x")
    await marker.wait_for(lambda s: len(s.messages) == 1)
    assert [m.text for m in sink.messages] == ["before"]


async def test_duplicate_client_id_returns_original_and_is_not_delivered(broker: Broker) -> None:
    sink = Sink()
    await broker.subscribe("room", sink)
    first = await broker.publish("room", "alice", "hello", client_id="c-1")
    again = await broker.publish("room", "alice", "hello", client_id="c-1")
    assert again.duplicate and not first.duplicate
    assert again.message.id == first.message.id
    assert again.message.client_id == "c-1"
    other_user = await broker.publish("room", "bob", "hello", client_id="c-1")
    assert not other_user.duplicate and other_user.message.id == 2
    await sink.wait_for(lambda s: len(s.messages) >= 2)
    assert [m.id for m in sink.messages] == [1, 2]


async def test_a_publish_says_the_epoch_its_id_belongs_to(broker: Broker) -> None:
    first = await broker.publish("room", "alice", "hello", client_id="e-1")
    again = await broker.publish("room", "alice", "hello", client_id="e-1")
    plain = await broker.publish("room", "alice", "no client id")
    epoch = (await broker.history("room", since=None, limit=10)).epoch
    assert first.epoch == again.epoch == plain.epoch == epoch is not None


async def test_a_peek_at_a_room_neither_reads_nor_creates_it(broker: Broker) -> None:
    assert isinstance(broker, PeeksRooms)
    assert await broker.last_id("never-used") == 0
    assert (await broker.history("never-used", since=None, limit=5)).epoch  # made by a read
    await broker.publish("room", "alice", "one")
    await broker.publish("room", "alice", "two")
    assert await broker.last_id("room") == 2
    if isinstance(broker, CountsRooms):  # the peek held nothing in memory
        before = broker.rooms
        assert await broker.last_id("peeked-only") == 0
        assert broker.rooms == before


async def test_history_without_since_returns_newest(broker: Broker) -> None:
    for i in range(3):
        await broker.publish("room", "alice", f"m{i}")
    h = await broker.history("room", since=None, limit=2)
    assert [m.text for m in h.messages] == ["m1", "m2"]
    assert h.last_id == 3 and h.complete and h.epoch


async def test_history_of_an_empty_room(broker: Broker) -> None:
    h = await broker.history("nobody-here", since=None, limit=10)
    assert h.messages == [] and h.last_id == 0
    resumed = await broker.history("nobody-here", since=0, limit=10)
    assert resumed.messages == [] and resumed.complete


async def test_history_since_returns_exactly_what_came_after(broker: Broker) -> None:
    for i in range(4):
        await broker.publish("room", "alice", f"m{i}")
    h = await broker.history("room", since=2, limit=100)
    assert [m.id for m in h.messages] == [3, 4]
    assert h.complete
    up_to_date = await broker.history("room", since=4, limit=100)
    assert up_to_date.messages == [] and up_to_date.complete


async def test_history_since_older_than_kept_is_incomplete(broker: Broker) -> None:
    for i in range(HISTORY + 3):
        await broker.publish("room", "alice", f"m{i}")
    h = await broker.history("room", since=1, limit=100)
    assert not h.complete
    assert h.messages and h.messages[-1].id == HISTORY + 3
    assert len(h.messages) <= HISTORY + 1  # approximate trimming may keep a few more
    # just inside what is kept: complete, nothing missing, nothing repeated
    first_kept = h.messages[0].id
    inside = await broker.history("room", since=first_kept - 1, limit=100)
    assert inside.complete
    assert [m.id for m in inside.messages] == list(range(first_kept, HISTORY + 4))


async def test_history_since_beyond_last_id_is_incomplete(broker: Broker) -> None:
    await broker.publish("room", "alice", "only")
    h = await broker.history("room", since=99, limit=10)
    assert not h.complete


async def page_ids(broker: Broker, room: str, before: int | None, limit: int) -> list[int]:
    h = await broker.history(room, since=None, limit=limit, before=before)
    assert h.complete  # without since: nothing asked for was left out
    return [m.id for m in h.messages]


async def test_history_before_bounds_the_ids_from_above(broker: Broker) -> None:
    for i in range(4):
        await broker.publish("room", "alice", f"m{i}")
    assert await page_ids(broker, "room", 3, 10) == [1, 2]
    assert await page_ids(broker, "room", 4, 10) == [1, 2, 3]
    assert await page_ids(broker, "room", 1, 10) == []
    assert await page_ids(broker, "room", 2, 10) == [1]
    assert await page_ids(broker, "room", 99, 10) == [1, 2, 3, 4]  # above every id: all
    h = await broker.history("room", since=None, limit=10, before=3)
    assert h.last_id == 4 and [m.text for m in h.messages] == ["m0", "m1"]


async def test_history_before_with_a_limit_is_the_newest_below_it(broker: Broker) -> None:
    for i in range(HISTORY):
        await broker.publish("room", "alice", f"m{i}")
    assert await page_ids(broker, "room", 5, 2) == [3, 4]
    assert await page_ids(broker, "room", 5, 0) == []
    # paging back as a client does: `before` = the first id of the page before; one more
    # than the page is asked for to learn whether older messages are kept ("more")
    pages, before = [], None
    while True:
        ids = await page_ids(broker, "room", before, 2 + 1)
        more = len(ids) > 2
        page = ids[-2:]
        pages.append(page)
        if not more:
            break
        before = page[0]
    assert pages == [[4, 5], [2, 3], [1]]


async def test_history_before_in_an_empty_room(broker: Broker) -> None:
    h = await broker.history("nobody-here", since=None, limit=10, before=5)
    assert h.messages == [] and h.last_id == 0 and h.epoch
    resumed = await broker.history("nobody-here", since=0, limit=10, before=5)
    assert resumed.messages == [] and resumed.complete


async def test_history_before_within_what_is_kept(broker: Broker) -> None:
    for i in range(HISTORY + 3):
        await broker.publish("room", "alice", f"m{i}")
    kept = [m.id for m in (await broker.history("room", since=None, limit=100)).messages]
    first, last = kept[0], HISTORY + 3
    assert kept == list(range(first, last + 1)) and first > 1  # trimmed, consecutive
    assert await page_ids(broker, "room", last, 100) == list(range(first, last))
    assert await page_ids(broker, "room", first + 2, 100) == [first, first + 1]
    assert await page_ids(broker, "room", first, 100) == []  # older ones are gone
    assert await page_ids(broker, "room", first - 1, 100) == []
    # with since: complete only when nothing between since and before was trimmed
    h = await broker.history("room", since=first - 1, limit=100, before=first + 2)
    assert [m.id for m in h.messages] == [first, first + 1] and h.complete
    h = await broker.history("room", since=1, limit=100, before=first + 2)
    assert [m.id for m in h.messages] == [first, first + 1] and not h.complete
    h = await broker.history("room", since=first, limit=1, before=last)
    assert [m.id for m in h.messages] == [last - 1] and not h.complete  # cut by the limit
    h = await broker.history("room", since=last - 1, limit=100, before=last)
    assert h.messages == [] and h.complete


async def test_presence_join_leave_once_per_user(broker: Broker) -> None:
    sink = Sink()
    await broker.subscribe("room", sink)
    await broker.join("room", "alice", "c1")
    await broker.join("room", "alice", "c2")
    await broker.join("room", "bob", "c3")
    assert await broker.users("room") == ["alice", "bob"]
    await broker.leave("room", "alice", "c1")
    assert await broker.users("room") == ["alice", "bob"]
    await broker.leave("room", "alice", "c2")
    assert await broker.users("room") == ["bob"]
    await sink.wait_for(lambda s: len(s.presence) >= 3)
    assert [(p.user, p.event) for p in sink.presence] == [
        ("alice", "join"),
        ("bob", "join"),
        ("alice", "leave"),
    ]


async def test_leave_of_unknown_connection_is_harmless(broker: Broker) -> None:
    await broker.leave("room", "ghost", "nope")
    assert await broker.users("room") == []


async def test_unicode_and_actions_round_trip(broker: Broker) -> None:
    sink = Sink()
    await broker.subscribe("room", sink)
    text = 'héllo "wörld" \\ 🎉\nsecond line'
    await broker.publish("room", "zoë", text, kind="action", client_id="ü-1")
    await sink.wait_for(lambda s: len(s.messages) == 1)
    (msg,) = sink.messages
    assert (msg.user, msg.text, msg.kind, msg.client_id) == ("zoë", text, "action", "ü-1")
    (stored,) = (await broker.history("room", since=None, limit=1)).messages
    assert stored == msg


async def test_concurrent_publishes_get_distinct_ids(broker: Broker) -> None:
    results = await asyncio.gather(
        *(broker.publish("room", f"u{i % 3}", f"m{i}") for i in range(30))
    )
    ids = sorted(r.message.id for r in results)
    assert ids == list(range(1, 31))


async def test_healthy_when_started(broker: Broker) -> None:
    assert broker.healthy()


async def test_a_failing_subscriber_breaks_neither_publish_nor_other_rooms(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: object) -> None:
        raise RuntimeError("subscriber bug")

    good = Sink()
    await broker.subscribe("bad", explode)
    await broker.subscribe("good", good)
    with caplog.at_level(logging.ERROR):
        first = await broker.publish("bad", "alice", "one", client_id="b-1")
        await broker.join("bad", "alice", "c1")
        second = await broker.publish("bad", "alice", "two")
        await broker.publish("good", "bob", "fine")
        await broker.join("good", "bob", "c2")
        await good.wait_for(lambda s: len(s.messages) == 1 and len(s.presence) == 1)
    assert (first.message.id, second.message.id) == (1, 2)  # stored and acknowledged
    h = await broker.history("bad", since=None, limit=10)
    assert [m.text for m in h.messages] == ["one", "two"]
    assert await broker.users("bad") == ["alice"]
    assert [m.text for m in good.messages] == ["fine"]
    failures = [r for r in caplog.records if r.exc_info and "subscriber bug" in str(r.exc_info[1])]
    assert failures, "the subscriber's failure was not logged"


def test_the_registry_names_every_scheme_when_a_url_has_none_of_them() -> None:
    with pytest.raises(UsageError) as err:
        create_broker("amqp://localhost/", history_size=HISTORY)
    message = str(err.value)
    assert "'amqp'" in message
    for entry in BROKERS:
        for scheme in entry.schemes:
            assert f"{scheme}://" in message


def test_each_broker_takes_only_its_own_options() -> None:
    # serve passes every option; the memory broker has no key prefix and no presence TTL
    b = create_broker(None, history_size=3, dedup_window=1.0, prefix="p", presence_ttl=5.0)
    assert type(b).__name__ == "MemoryBroker"
    with pytest.raises(TypeError, match="histroy_size"):
        create_broker("memory://", histroy_size=3)


async def test_revocations_are_stored_and_read_back_when_changed(broker: Broker) -> None:
    """The ``Revocations`` capability (SQLite, Redis): an entry is read back by the next
    read, a read without change is cheap (None), a user's later cut-off replaces an
    earlier one and never the reverse, and an expired entry is not read."""
    import time

    from chatctl.broker.base import Revocations
    from chatctl.tokens.revocation import Revocation

    if not isinstance(broker, Revocations):
        pytest.skip("this broker keeps no revocations (the server keeps them in memory)")
    version, entries = await broker.revocations("")
    assert entries == [] or entries is None
    now = time.time()
    await broker.revoke(Revocation.token("abc", now + 60))
    version, entries = await broker.revocations(version)
    assert entries == [Revocation.token("abc", now + 60)]
    assert await broker.revocations(version) == (version, None)
    await broker.revoke(Revocation.user("alice", now))
    await broker.revoke(Revocation.user("alice", now - 100))  # earlier: changes nothing
    await broker.revoke(Revocation.token("gone", now - 1))  # expired already
    _, entries = await broker.revocations(version)
    assert entries is not None
    assert sorted(entries, key=lambda e: e.kind) == [
        Revocation.token("abc", now + 60),
        Revocation.user("alice", now),
    ]


async def test_a_broker_that_lists_rooms_lists_those_with_members(broker: Broker) -> None:
    from chatctl.broker.base import ListsRooms

    if not isinstance(broker, ListsRooms):
        pytest.skip("this broker lists no rooms (GET /rooms shows the node's own)")
    await broker.join("b-room", "bob", "c2")
    await broker.join("a-room", "alice", "c1")
    await broker.join("a-room", "alice", "c3")
    assert await broker.member_rooms() == ["a-room", "b-room"]


async def test_a_display_name_is_kept_with_its_message(broker: Broker) -> None:
    sink = Sink()
    await broker.subscribe("room", sink)
    first = await broker.publish("room", "hooks", "disk full", client_id="c1", display="Grafana")
    await broker.publish("room", "alice", "on it")
    repeat = await broker.publish("room", "hooks", "disk full", client_id="c1", display="Grafana")
    assert first.message.display == "Grafana" and first.message.sender == "Grafana (via hooks)"
    assert repeat.duplicate and repeat.message.display == "Grafana"
    await sink.wait_for(lambda s: len(s.messages) == 2)
    assert [m.display for m in sink.messages] == ["Grafana", None]
    kept = (await broker.history("room", since=None, limit=10)).messages
    assert [(m.user, m.display) for m in kept] == [("hooks", "Grafana"), ("alice", None)]
    assert '"display":"Grafana"' in kept[0].frame and "display" not in kept[1].frame
