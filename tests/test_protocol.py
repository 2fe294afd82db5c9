"""The protocol module, tested with plain function calls: no server, no event loop."""

from __future__ import annotations

import json
import sys

import pytest

from chatctl.protocol import (
    MAX_CLIENT_ID_CHARS,
    Ack,
    ErrorCode,
    ErrorFrame,
    Message,
    Ping,
    Presence,
    ProtocolError,
    SendMessage,
    Welcome,
    Who,
    parse_client_frame,
    parse_server_frame,
    parse_since,
    valid_room,
    valid_user,
)


def error_code(data: str | bytes) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(data)
    return info.value.code


def test_module_does_no_io() -> None:
    import chatctl.protocol as protocol

    with open(protocol.__file__) as f:
        source = f.read()
    assert "import asyncio" not in source and "websockets" not in source.split('"""', 2)[2]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("not json", ErrorCode.INVALID_JSON),
        ('{"message": "hi"', ErrorCode.INVALID_JSON),
        ("[1, 2]", ErrorCode.INVALID_FRAME),
        ('"hi"', ErrorCode.INVALID_FRAME),
        (b'{"message": "hi"}', ErrorCode.INVALID_FRAME),
        ("{}", ErrorCode.MISSING_FIELD),
        ('{"type": "message"}', ErrorCode.MISSING_FIELD),
        ('{"type": "shout", "message": "x"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": 7}', ErrorCode.UNKNOWN_TYPE),
        ('{"message": 42}', ErrorCode.INVALID_FIELD),
        ('{"message": "   "}', ErrorCode.INVALID_FIELD),
        ('{"message": "x", "kind": "yell"}', ErrorCode.INVALID_FIELD),
        ('{"message": "x", "client_id": 5}', ErrorCode.INVALID_FIELD),
        ('{"message": "x", "client_id": ""}', ErrorCode.INVALID_FIELD),
        ('{"message": "' + "x" * 8001 + '"}', ErrorCode.MESSAGE_TOO_LONG),
    ],
)
def test_bad_frames_raise_protocol_error_with_code(data: str | bytes, code: ErrorCode) -> None:
    assert error_code(data) == code


def test_client_id_length_limit() -> None:
    ok = parse_client_frame(json.dumps({"message": "x", "client_id": "a" * MAX_CLIENT_ID_CHARS}))
    assert isinstance(ok, SendMessage)
    assert (
        error_code(json.dumps({"message": "x", "client_id": "a" * 65})) == ErrorCode.INVALID_FIELD
    )


def test_error_carries_client_id_so_the_sender_can_match_it() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(json.dumps({"message": "x" * 9000, "client_id": "c9"}))
    frame = json.loads(info.value.to_frame().frame())
    assert frame == {
        "type": "error",
        "code": "message_too_long",
        "reason": "message is 9000 characters; the limit is 8000",
        "client_id": "c9",
    }


def test_message_length_limit_is_configurable() -> None:
    assert isinstance(parse_client_frame('{"message": "abcd"}', max_chars=4), SendMessage)
    with pytest.raises(ProtocolError):
        parse_client_frame('{"message": "abcde"}', max_chars=4)


def test_bare_browser_message_is_a_chat_message() -> None:
    assert parse_client_frame('{"message": "hi"}') == SendMessage("hi")


def test_full_message_frame() -> None:
    frame = parse_client_frame(
        '{"type":"message","message":"waves","client_id":"c1","kind":"action"}'
    )
    assert frame == SendMessage("waves", client_id="c1", kind="action")


def test_client_frames_round_trip() -> None:
    for frame in (SendMessage("hi"), SendMessage("x", "id-1", "action"), Who(), Ping({"n": 1})):
        assert parse_client_frame(frame.frame()) == frame


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    depth = sys.getrecursionlimit() + 100
    assert error_code("[" * depth + "]" * depth) in (
        ErrorCode.INVALID_JSON,
        ErrorCode.INVALID_FRAME,
    )


def test_message_frame_fields_and_round_trip() -> None:
    msg = Message(7, "general", "alice", 'hé "x"', 1700000000.123, "text", "c1")
    frame = json.loads(msg.frame)
    assert frame == {
        "type": "message",
        "id": 7,
        "room": "general",
        "user": "alice",
        "message": 'hé "x"',
        "ts": 1700000000.123,
        "kind": "text",
        "client_id": "c1",
    }
    assert Message.from_dict(frame) == msg
    assert "client_id" not in json.loads(Message(1, "r", "u", "t", 1.0).frame)
    assert "hé" in msg.frame  # UTF-8 kept, not \\u-escaped


def test_message_from_bad_record_is_value_error() -> None:
    with pytest.raises(ValueError):
        Message.from_dict({"id": 1})


def test_welcome_says_whether_resume_recovered() -> None:
    msg = Message(3, "r", "u", "t", 1.0)
    plain = json.loads(Welcome("u", "r", "e1", 3, [msg], ["u"]).frame())
    assert plain["type"] == "welcome" and plain["last_id"] == 3 and plain["epoch"] == "e1"
    assert plain["history"][0]["id"] == 3 and "recovered" not in plain
    resumed = json.loads(Welcome("u", "r", "e1", 3, [], ["u"], since=1, recovered=False).frame())
    assert resumed["since"] == 1 and resumed["recovered"] is False


def test_server_frames() -> None:
    ack = json.loads(Ack("c1", 5, "r", 2.0, duplicate=True).frame())
    assert ack == {
        "type": "ack",
        "client_id": "c1",
        "id": 5,
        "room": "r",
        "ts": 2.0,
        "duplicate": True,
    }
    err = json.loads(ErrorFrame(ErrorCode.RATE_LIMITED, "slow down", retry_after=0.5).frame())
    assert err == {
        "type": "error",
        "code": "rate_limited",
        "reason": "slow down",
        "retry_after": 0.5,
    }
    pres = json.loads(Presence("r", "bob", "leave", 3.0).frame)
    assert pres == {"type": "presence", "event": "leave", "room": "r", "user": "bob", "ts": 3.0}


def test_parse_server_frame() -> None:
    assert parse_server_frame('{"type": "ack", "id": 1}')["id"] == 1
    with pytest.raises(ProtocolError):
        parse_server_frame('{"id": 1}')
    with pytest.raises(ProtocolError):
        parse_server_frame("nope")


@pytest.mark.parametrize("room", ["general", "a", "ops-2", "team.backend", "A_b", "x" * 64])
def test_valid_rooms(room: str) -> None:
    assert valid_room(room)


@pytest.mark.parametrize("room", ["", "-x", ".hidden", "a/b", "a b", "é", "x" * 65, "a:b", "{x}"])
def test_invalid_rooms(room: str) -> None:
    assert not valid_room(room)


def test_user_names() -> None:
    assert valid_user("alice") and valid_user("bob@example.com") and valid_user("zoë")
    assert not valid_user("") and not valid_user("a b") and not valid_user("x\n")
    assert not valid_user("x" * 65)


def test_parse_since() -> None:
    assert parse_since(None) is None and parse_since("") is None
    assert parse_since("0") == 0 and parse_since("42") == 42
    for bad in ("-1", "1.5", "abc", "9" * 20):
        with pytest.raises(ValueError):
            parse_since(bad)
