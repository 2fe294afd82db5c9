"""Moderation state and tombstones, on every broker that keeps them (the ``Moderates``
capability, chatctl.broker.base): sanctions set, lifted, expired and listed; a moderation
announcement's record and a deleted message's tombstone through publish and history.
The ``broker`` fixture is the conformance suite's (each registered broker)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from chatctl.broker import BROKERS, Broker, create_broker
from chatctl.broker.base import Moderates, SanctionEntry
from chatctl.broker.registry import option_keywords
from chatctl.protocol import Moderation
from support.broker_services import BrokerServices, entry_named
from support.brokers import Sink


@pytest.fixture(params=[entry.name for entry in BROKERS])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    """Each registered broker, as in test_conformance.py."""
    entry = entry_named(request.param)
    services = BrokerServices(request, lambda: request.getfixturevalue("module_redis"))
    target = entry.test(services)
    b = create_broker(
        target.url, history_size=5, dedup_window=60.0, **option_keywords(target.options)
    )
    await b.start()
    try:
        yield b
    finally:
        await b.close()


def store(broker: Broker) -> Moderates:
    if not isinstance(broker, Moderates):
        pytest.skip(f"{type(broker).__name__} keeps no moderation state")
    return broker


async def test_sanctions_are_set_listed_lifted_and_expire(broker: Broker) -> None:
    s = store(broker)
    now = time.time()
    await s.set_sanction("r", SanctionEntry("bob", "mute", now + 60, "spam", "alice"))
    await s.set_sanction("r", SanctionEntry("bob", "ban", None, None, "alice"))
    await s.set_sanction("r", SanctionEntry("eve", "mute", now - 1, "old", "alice"))
    await s.set_sanction("other", SanctionEntry("carol", "ban", now + 60, None, "dan"))
    listed = sorted(await s.sanctions("r"), key=lambda e: e.kind)
    assert listed == [
        SanctionEntry("bob", "ban", None, None, "alice"),
        SanctionEntry("bob", "mute", now + 60, "spam", "alice"),
    ]
    assert await s.lift_sanction("r", "bob", "mute") is True
    assert await s.lift_sanction("r", "bob", "mute") is False
    assert await s.lift_sanction("r", "eve", "mute") is False  # expired: not in force
    assert [e.kind for e in await s.sanctions("r")] == ["ban"]
    # a later one replaces the earlier one of the same kind
    await s.set_sanction("r", SanctionEntry("bob", "ban", now + 5, "again", "zed"))
    assert await s.sanctions("r") == [SanctionEntry("bob", "ban", now + 5, "again", "zed")]
    assert [e.user for e in await s.sanctions("other")] == ["carol"]
    assert await s.sanctions("empty") == []


async def test_a_moderation_record_and_a_tombstone_round_trip(broker: Broker) -> None:
    s = store(broker)
    sink = Sink()
    await broker.subscribe("r", sink)
    first = await broker.publish("r", "bob", "something rude", client_id="b1")
    await broker.publish("r", "carol", "hello")
    assert (await s.message("r", 1)) == first.message
    assert await s.delete_message("r", 1) is True
    assert await s.delete_message("r", 1) is False  # already deleted
    assert await s.message("r", 1) is None
    record = Moderation("delete", "bob", "rude", target_id=1)
    announced = await s.publish(
        "r", "alice", record.describe("alice"), kind="moderation", moderation=record, client_id="a1"
    )
    assert announced.message.moderation == record
    assert announced.message.kind == "moderation"
    await sink.wait_for(lambda k: len(k.messages) >= 3)
    assert sink.messages[2].moderation == record
    kept = (await broker.history("r", since=None, limit=10)).messages
    assert [(m.id, m.text, m.deleted) for m in kept] == [
        (1, "", True),
        (2, "hello", False),
        (3, "alice deleted a message of bob (#1): rude", False),
    ]
    assert kept[0].user == "bob" and kept[0].ts == first.message.ts
    assert kept[0].tombstone() == kept[0]
    assert kept[2].moderation == record
    assert '"deleted":true' in kept[0].frame and '"message":""' in kept[0].frame
    assert (await broker.history("r", since=0, limit=10)).messages == kept


async def test_a_missing_message_is_not_deleted(broker: Broker) -> None:
    s = store(broker)
    await broker.publish("r", "bob", "one")
    assert await s.message("r", 7) is None
    assert await s.delete_message("r", 7) is False
    assert await s.delete_message("r", 0) is False
    assert [m.text for m in (await broker.history("r", since=None, limit=10)).messages] == ["one"]
