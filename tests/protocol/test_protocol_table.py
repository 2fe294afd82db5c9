"""The frame table: every frame type round-trips, is documented in docs/protocol.md and (server
frames) has a handler on the web page; server frames read into their classes whatever their
field order or spacing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chatctl import web
from chatctl.protocol import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    Ack,
    ClientFrame,
    Delete,
    DmNotice,
    ErrorCode,
    ErrorFrame,
    HistoryPage,
    HistoryRequest,
    Message,
    Moderate,
    Moderation,
    Ping,
    Pong,
    Presence,
    PresenceBatch,
    ProtocolError,
    RateLimit,
    Refresh,
    Refreshed,
    SendMessage,
    ServerFrame,
    Unknown,
    UserList,
    Welcome,
    Who,
    parse_client_frame,
    parse_server_frame,
    peek_type,
    type_name,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
APP_JS = (Path(web.__file__).parent / "app.js").read_text()

MSG = Message(7, "ops", "bob", 'say "hi"', 12.5, kind="action", client_id="c-1")
WELCOME = Welcome(
    "alice", "ops", "e1", 7, [MSG], ["alice", "bob"], since=3, recovered=False,
    limits={"rate": 10.0, "burst": 20.0}, user_count=2,
)  # fmt: skip
#: one example of every server frame type, as full as its fields go
SERVER_EXAMPLES: list[ServerFrame] = [
    WELCOME,
    Welcome("bob", "ops", "e2", 0, [], ["bob"], server="chatctl/1", user_count=1),
    Welcome(
        "bob", "ops", "e1", 9, [MSG], ["bob"], since=2, recovered=False, user_count=1, more=True
    ),
    MSG,
    Message(8, "ops", "bob", "plain", 13.0),
    Ack("c-1", 7, "ops", 12.5, duplicate=True),
    ErrorFrame(ErrorCode.RATE_LIMITED, "slow down", "c-2", retry_after=0.5, blocked_by="c-1"),
    ErrorFrame(ErrorCode.BROKER_UNAVAILABLE, "maybe", "c-3", retry_after=1.0, stored="unknown"),
    ErrorFrame(ErrorCode.INTERNAL, "oops"),
    Presence("ops", "bob", "join", 1.0),
    PresenceBatch("ops", ("a", "c"), ("b",), 2.0),
    Refreshed("alice", 1764097000.0),
    UserList("ops", ["a", "b"]),
    Pong({"n": [1, "x"]}),
    Pong(),
    RateLimit(500.0, 25000.0),
    HistoryPage("ops", "e1", [Message(6, "ops", "amy", "older", 11.0), MSG], True, "h-1"),
    HistoryPage("ops", "e1", [], False),
    DmNotice("alice", "@alice", 3),
    Message(
        9,
        "ops",
        "amy",
        "amy muted bob for 10m: spam",
        14.0,
        "moderation",
        moderation=Moderation("mute", "bob", "spam", until=614.0),
    ),
    Message(10, "ops", "amy", "", 15.0, moderation=Moderation("delete", "bob", target_id=8)),
    Message(8, "ops", "bob", "plain", 13.0).tombstone(),
]
CLIENT_EXAMPLES: list[ClientFrame] = [
    SendMessage("hi"),
    SendMessage("waves", "id-1", "action"),
    Who(),
    Ping({"n": 1}),
    Ping(),
    Refresh("a.b.c"),
    HistoryRequest(before=41, limit=200, client_id="h-1"),
    HistoryRequest(),
    Moderate("mute", "bob", 600.0, "spam", "m-1"),
    Moderate("kick", "bob"),
    Delete(8, "oops", "d-1"),
    Delete(9),
]


def text_of(frame: ServerFrame | ClientFrame) -> str:
    """The frame's JSON text (``message`` and presence frames cache it as a property)."""
    encoded: Any = frame.frame
    return encoded if isinstance(encoded, str) else encoded()


def test_every_frame_type_has_an_example() -> None:
    assert {type(f) for f in SERVER_EXAMPLES} == set(SERVER_FRAMES.values())
    assert {type(f) for f in CLIENT_EXAMPLES} == set(CLIENT_FRAMES.values())
    assert all(name == cls.TYPE for name, cls in {**SERVER_FRAMES, **CLIENT_FRAMES}.items())


@pytest.mark.parametrize("frame", SERVER_EXAMPLES, ids=lambda f: type(f).__name__)
def test_server_frames_round_trip(frame: ServerFrame) -> None:
    data = text_of(frame)
    assert json.loads(data) == frame.to_dict() and frame.to_dict()["type"] == frame.TYPE
    assert SERVER_FRAMES[frame.TYPE].from_dict(frame.to_dict()) == frame
    assert parse_server_frame(data) == frame
    reordered = json.dumps(dict(reversed(json.loads(data).items())), indent=1)
    assert parse_server_frame(reordered) == frame
    assert peek_type(data) == type_name(frame) == frame.TYPE
    assert peek_type(reordered) is None  # not type-first: the caller decodes it


@pytest.mark.parametrize("frame", CLIENT_EXAMPLES, ids=lambda f: type(f).__name__)
def test_client_frames_round_trip(frame: ClientFrame) -> None:
    data = text_of(frame)
    assert json.loads(data) == frame.to_dict() and frame.to_dict()["type"] == frame.TYPE
    assert CLIENT_FRAMES[frame.TYPE].from_dict(frame.to_dict()) == frame
    assert parse_client_frame(data) == frame
    assert "a.b.c" not in repr(Refresh("a.b.c"))  # a token never reaches a log via repr


def test_a_welcome_says_more_only_when_true_and_only_to_a_resume() -> None:
    paged = Welcome(
        "bob", "ops", "e1", 9, [MSG], ["bob"], since=2, recovered=False, user_count=1, more=True
    )
    assert paged.to_dict()["more"] is True and paged.to_dict()["recovered"] is False
    assert "more" not in WELCOME.to_dict()  # false: omitted
    # a server older than `more` reads as one that says nothing can be paged
    assert Welcome.from_dict({k: v for k, v in paged.to_dict().items() if k != "more"}) == (
        Welcome("bob", "ops", "e1", 9, [MSG], ["bob"], since=2, recovered=False, user_count=1)
    )
    # `more` means nothing without `since`
    fresh = {**SERVER_EXAMPLES[1].to_dict(), "more": True}
    assert Welcome.from_dict(fresh).more is False


def test_presence_batch_frame_is_its_dict_also_without_a_join() -> None:
    batch = PresenceBatch("ops", ("a", "c"), ("b",), 2.0)
    assert batch.frame_without_join("a") == text_of(batch.without_join("a"))


def doc_section(title: str) -> str:
    start = DOC.index(f"### {title}\n")
    end = DOC.find("\n## ", start)
    return DOC[start:end]


@pytest.mark.parametrize("name", sorted(SERVER_FRAMES))
def test_every_server_frame_type_is_documented(name: str) -> None:
    assert f"**`{name}`**" in doc_section("Server → client"), f"docs/protocol.md lacks {name}"


@pytest.mark.parametrize("name", sorted(CLIENT_FRAMES))
def test_every_client_frame_type_is_documented(name: str) -> None:
    assert f"| `{name}` |" in doc_section("Client → server"), f"docs/protocol.md lacks {name}"


def page_handlers() -> set[str]:
    table = re.search(r"const FRAME_HANDLERS = Object\.freeze\(\{(.*?)\}\);", APP_JS, re.S)
    assert table is not None, "web/app.js has no FRAME_HANDLERS table"
    return set(re.findall(r"^\s*([a-z_]+):", table[1], re.M))


@pytest.mark.parametrize("name", sorted(SERVER_FRAMES))
def test_the_web_page_handles_every_server_frame_type(name: str) -> None:
    assert name in page_handlers(), f"web/app.js FRAME_HANDLERS lacks {name}"


def test_the_web_page_handles_no_type_the_server_never_sends() -> None:
    assert page_handlers() <= set(SERVER_FRAMES)


def test_unknown_types_and_codes_and_malformed_frames() -> None:
    assert parse_server_frame('{"type":"typing","user":"bob"}') == Unknown("typing")
    assert type_name(Unknown("typing")) == "typing"
    error = parse_server_frame('{"type":"error","code":"brand_new","reason":"no"}')
    assert isinstance(error, ErrorFrame) and error.reason == "no"
    assert error.code not in (ErrorCode.BROKER_UNAVAILABLE, ErrorCode.RATE_LIMITED)
    for bad in ("not json", "[1]", '{"no":"type"}', '{"type":"message","id":"x"}'):
        with pytest.raises(ProtocolError):
            parse_server_frame(bad)
    with pytest.raises(ProtocolError, match="malformed presence"):
        parse_server_frame('{"type":"presence","event":"dance","room":"r","user":"u","ts":1}')
    with pytest.raises(ProtocolError, match="malformed limits"):
        parse_server_frame('{"type":"limits","rate":true,"burst":1}')
