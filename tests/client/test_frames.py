"""Server frames read into protocol's types, whatever their field order or spacing."""

from __future__ import annotations

import json

import pytest

from chatctl.client.frames import Pong, Unknown, UserList, parse, peek_type, type_name
from chatctl.protocol import (
    Ack,
    ErrorCode,
    ErrorFrame,
    Message,
    Presence,
    PresenceBatch,
    ProtocolError,
    Refreshed,
    Welcome,
    pong_frame,
    who_frame,
)

MSG = Message(7, "ops", "bob", 'say "hi"', 12.5, kind="action", client_id="c-1")
WELCOME = Welcome(
    "alice", "ops", "e1", 7, [MSG], ["alice", "bob"], since=3, recovered=False,
    limits={"rate": 10.0, "burst": 20.0}, user_count=2,
)  # fmt: skip
FRAMES = [
    (MSG.frame, MSG),
    (Ack("c-1", 7, "ops", 12.5, duplicate=True).frame(), Ack("c-1", 7, "ops", 12.5, True)),
    (
        ErrorFrame(ErrorCode.RATE_LIMITED, "slow down", "c-2", retry_after=0.5).frame(),
        ErrorFrame(ErrorCode.RATE_LIMITED, "slow down", "c-2", retry_after=0.5),
    ),
    (Presence("ops", "bob", "join", 1.0).frame, Presence("ops", "bob", "join", 1.0)),
    (WELCOME.frame(), WELCOME),
    (PresenceBatch("ops", ("a",), ("b",), 2.0).frame, PresenceBatch("ops", ("a",), ("b",), 2.0)),
    (who_frame("ops", ["a", "b"]), UserList("ops", ["a", "b"])),
    (pong_frame({"n": 1}), Pong({"n": 1})),
    (Refreshed("alice", 1764097000.0).frame(), Refreshed("alice", 1764097000.0)),
]


@pytest.mark.parametrize(("data", "expected"), FRAMES)
def test_every_server_frame_parses_to_its_type_in_any_field_order(
    data: str, expected: object
) -> None:
    assert parse(data) == expected
    reordered = json.dumps(dict(reversed(json.loads(data).items())), indent=1)
    assert parse(reordered) == expected
    assert peek_type(data) == type_name(expected)
    assert peek_type(reordered) is None  # not type-first: the caller decodes it


def test_unknown_types_and_codes_and_malformed_frames() -> None:
    assert parse('{"type":"typing","user":"bob"}') == Unknown("typing")
    error = parse('{"type":"error","code":"brand_new","reason":"no"}')
    assert isinstance(error, ErrorFrame) and error.reason == "no"
    assert error.code not in (ErrorCode.BROKER_UNAVAILABLE, ErrorCode.RATE_LIMITED)
    for bad in ("not json", "[1]", '{"no":"type"}', '{"type":"message","id":"x"}'):
        with pytest.raises(ProtocolError):
            parse(bad)
    with pytest.raises(ProtocolError, match="malformed presence"):
        parse('{"type":"presence","event":"dance","room":"r","user":"u","ts":1}')
