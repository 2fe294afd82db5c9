"""The protocol module, tested with plain function calls: no server, no event loop."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from chatctl.protocol import (
    MAX_CLIENT_ID_CHARS,
    Ack,
    ErrorCode,
    ErrorFrame,
    HistoryPage,
    HistoryRequest,
    Message,
    Ping,
    Pong,
    Presence,
    ProtocolError,
    Refresh,
    SendMessage,
    Welcome,
    Who,
    dumps,
    parse_client_frame,
    parse_epoch,
    parse_history,
    parse_server_frame,
    parse_since,
    user_problem,
    valid_room,
    valid_user,
)


def error_code(data: str | bytes) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(data)
    return info.value.code


def test_package_does_no_io() -> None:
    import chatctl.protocol as protocol

    modules = sorted(Path(protocol.__file__).parent.glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        code = path.read_text().split('"""', 2)[2]  # past the module docstring
        assert "asyncio" not in code and "websockets" not in code and "socket" not in code, path
        assert len(code.splitlines()) < 400, path


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
    frame = json.loads(ErrorFrame.of(info.value).frame())
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


def test_client_frames_parse_what_they_write() -> None:
    frames = (SendMessage("hi"), SendMessage("x", "id-1", "action"), Who(), Ping({"n": 1}))
    for frame in (*frames, Refresh("a.b.c")):
        assert parse_client_frame(frame.frame()) == frame
    assert "a.b.c" not in repr(Refresh("a.b.c"))  # a token never reaches a log via repr


def test_refresh_needs_a_token_string() -> None:
    with pytest.raises(ProtocolError) as missing:
        parse_client_frame('{"type":"refresh"}')
    assert missing.value.code == ErrorCode.MISSING_FIELD
    for bad in ('""', "5", "null", '["a.b.c"]'):
        with pytest.raises(ProtocolError) as invalid:
            parse_client_frame(f'{{"type":"refresh","token":{bad}}}')
        assert invalid.value.code == (
            ErrorCode.MISSING_FIELD if bad == "null" else ErrorCode.INVALID_FIELD
        )


def test_history_request_defaults_cap_and_bad_fields() -> None:
    assert parse_client_frame('{"type":"history"}') == HistoryRequest(None, 50, None)
    capped = parse_client_frame('{"type":"history","before":9,"limit":5000,"client_id":"h"}')
    assert capped == HistoryRequest(9, 200, "h")
    for bad in ('"before":0', '"before":"3"', '"before":1.0', '"limit":0', '"limit":true'):
        with pytest.raises(ProtocolError) as info:
            parse_client_frame(f'{{"type":"history","client_id":"x",{bad}}}')
        assert (info.value.code, info.value.client_id) == (ErrorCode.INVALID_FIELD, "x"), bad


def test_history_page_reads_leniently() -> None:
    page = parse_server_frame('{"type":"history","messages":[{"type":"message","id":3,'
                              '"room":"r","user":"u","message":"m","ts":1}]}')  # fmt: skip
    assert isinstance(page, HistoryPage) and [m.id for m in page.messages] == [3]
    assert page.more is False and page.client_id is None


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
    assert parse_server_frame('{"type": "ack", "client_id": "c", "id": 1}') == Ack("c", 1, "", 0.0)
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
    assert valid_user("李雷") and valid_user("❤️")  # U+FE0F VARIATION SELECTOR is Mn: fine
    assert not valid_user("") and not valid_user("a b") and not valid_user("x\n")
    assert not valid_user("x" * 65)


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        ("alice\u200b", "U+200B ZERO WIDTH SPACE is not allowed in a user name"),
        ("\u202ealice", "U+202E RIGHT-TO-LEFT OVERRIDE is not allowed in a user name"),
        ("\u2066x", "U+2066 LEFT-TO-RIGHT ISOLATE is not allowed in a user name"),
        ("a\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE is not allowed in a user name"),
        ("a\u3000b", "U+3000 IDEOGRAPHIC SPACE is not allowed in a user name"),
        ("a\u2029", "U+2029 PARAGRAPH SEPARATOR is not allowed in a user name"),
        ("a\x00", "U+0000 Cc is not allowed in a user name"),
        ("a\x85", "U+0085 Cc is not allowed in a user name"),
        ("a\U000f0000", "U+F0000 Co is not allowed in a user name"),
        ("a\U0010fffe", "U+10FFFE Cn is not allowed in a user name"),
        ("a\ud800", "U+D800 Cs is not allowed in a user name"),
        ("", "a user name has 1-64 characters, not 0"),
    ],
)
def test_invisible_user_names_are_refused(user: str, problem: str) -> None:
    assert user_problem(user) == problem and not valid_user(user)


@pytest.mark.parametrize("text", ["\u200b", "\u200b\u200d\u2060", " \u202e\n", "\x00", "\x01\t"])
def test_invisible_only_messages_are_blank(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(json.dumps({"message": text, "client_id": "c"}))
    assert info.value.code == ErrorCode.INVALID_FIELD and info.value.client_id == "c"
    assert info.value.reason == "message is empty"


def test_nul_in_a_message_is_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(json.dumps({"message": "a\x00b"}))
    assert (info.value.code, info.value.reason) == (
        ErrorCode.INVALID_FIELD,
        "message contains U+0000 (NUL)",
    )


@pytest.mark.parametrize(
    "text",
    [
        "👩\u200d💻",  # ZWJ sequence: one visible emoji
        "🏳️\u200d🌈",
        "שלום\u200f!",  # RLM inside real text
        "x\u200b",
        "\u2003.",
        "\U000f0000",  # private use: an icon font draws it
    ],
)
def test_visible_text_with_format_characters_is_kept(text: str) -> None:
    assert parse_client_frame(json.dumps({"message": text})) == SendMessage(text)


def test_dumps_writes_strict_json_only() -> None:
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            dumps({"type": "pong", "data": bad})
        with pytest.raises(ValueError):
            Pong([bad]).frame()


@pytest.mark.parametrize("data", ["NaN", "Infinity", "-Infinity", "1e999", "[1, -1e309]"])
def test_non_finite_numbers_are_invalid_json(data: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(f'{{"type": "ping", "data": {data}}}')
    assert info.value.code == ErrorCode.INVALID_JSON
    assert parse_client_frame('{"type": "ping", "data": 1e308}') == Ping(1e308)


def test_parse_since() -> None:
    assert parse_since(None) is None and parse_since("") is None
    assert parse_since("0") == 0 and parse_since("42") == 42 and parse_since("007") == 7
    for bad in ("-1", "1.5", "abc", "9" * 20, "²", "٣", "1_0", "+1", " 1", "1 ", "\uff11"):
        with pytest.raises(ValueError, match=r"^since must be a non-negative integer"):
            parse_since(bad)


def test_parse_history() -> None:
    assert parse_history(None, cap=50) is None and parse_history("", cap=50) is None
    assert parse_history("7", cap=50) == 7 and parse_history("0007", cap=50) == 7
    assert parse_history("500", cap=50) == 50 and parse_history("9" * 400, cap=50) == 50
    assert parse_history("0" * 30 + "3", cap=50) == 3
    for bad in ("²", "٣", "1_0", "-1", "x", "1e3"):
        with pytest.raises(ValueError, match=r"^history must be a non-negative integer"):
            parse_history(bad, cap=50)


def test_parse_epoch() -> None:
    assert parse_epoch(None) is None and parse_epoch("") is None
    assert parse_epoch("cbce1aab") == "cbce1aab"
    for bad in ("\x00", "a b", "é", "e" * 65, "a/b"):
        with pytest.raises(ValueError, match=r"^epoch must be"):
            parse_epoch(bad)
