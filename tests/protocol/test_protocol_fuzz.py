"""Property-based fuzzing of the client frame parser: whatever arrives, it returns a frame or
raises ProtocolError (nothing else), and every valid frame round-trips."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatctl.protocol import (
    MAX_CLIENT_ID_CHARS,
    ErrorCode,
    ErrorFrame,
    Ping,
    Pong,
    ProtocolError,
    SendMessage,
    Who,
    is_blank,
    parse_client_frame,
)

#: 200 examples a test a run: each CI run draws new ones (more per run cost the suite ~10 s of
#: CPU for little: the failures these found came within the first hundred)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


#: integers JSON carries exactly between chatctl processes (orjson's: 64 bits, signed or not)
INTEGERS = st.integers(min_value=-(2**63), max_value=2**64 - 1)


def json_trees(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | INTEGERS | floats | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=12,
    )


#: what ``json.dumps`` writes, ``NaN`` and ``Infinity`` included (not JSON: refused)
json_values = json_trees(st.floats())
#: strict JSON values: what a client may send and what the server may echo
finite_json_values = json_trees(st.floats(allow_nan=False, allow_infinity=False))

frame_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "who", "ping", "pong", "", "MESSAGE"]) | json_values,
        "message": st.text(max_size=50) | json_values,
        "client_id": st.text(max_size=80) | json_values,
        "kind": st.sampled_from(["text", "action", "me"]) | json_values,
        "data": json_values,
    },
)


def check(data: str | bytes, max_chars: int = 100) -> None:
    try:
        frame = parse_client_frame(data, max_chars=max_chars)
    except ProtocolError as exc:
        assert isinstance(exc.code, ErrorCode)
        ErrorFrame.of(exc).frame().encode()  # the error is always serialisable and sendable
        return
    assert isinstance(frame, SendMessage | Who | Ping)
    # whatever is accepted can be stored, serialised and sent as UTF-8 to every member
    frame.frame().encode()
    if isinstance(frame, Ping):
        Pong(frame.data).frame().encode()


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return
    check(text)


@FUZZ
@given(st.text(max_size=300))
@example("[" * 100_000)  # deep nesting
@example('{"message": "\\ud800"}')  # a lone surrogate
@example('{"message": 1e999}')
@example('{"type": "ping", "data": 1e999}')
@example('{"type": "ping", "data": [NaN]}')
@example('{"type": "ping", "data": {"x": -Infinity}}')
@example('{"type": "message", "message": "x", "client_id": ""}')
def test_arbitrary_text(text: str) -> None:
    check(text)


@FUZZ
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    check(json.dumps(value))


@FUZZ
@given(frame_like)
def test_frame_shaped_objects(obj: dict[str, Any]) -> None:
    check(json.dumps(obj))


#: one surrogate code point alone (a high one followed by a low one would be a valid pair)
surrogates = st.characters(categories=["Cs"])


@FUZZ
@given(st.text(max_size=10), surrogates, st.sampled_from(["message", "client_id", "data"]))
@example("hi", "\ud800", "message")
def test_lone_surrogates_never_get_in(prefix: str, bad: str, field: str) -> None:
    """``"\\ud800"`` is valid JSON that no UTF-8 can carry: stored, it would poison history."""
    obj = {"type": "ping" if field == "data" else "message", "message": "ok", field: prefix + bad}
    data = json.dumps(obj)  # ASCII, with \u escapes, as a client would send it
    try:
        parse_client_frame(data)
    except ProtocolError as exc:
        assert exc.code in (ErrorCode.INVALID_JSON, ErrorCode.INVALID_FIELD)
    else:
        raise AssertionError(f"accepted {data}")


send_messages = st.builds(
    SendMessage,
    text=st.text(min_size=1, max_size=100).filter(lambda t: not is_blank(t) and "\x00" not in t),
    client_id=st.none() | st.text(min_size=1, max_size=MAX_CLIENT_ID_CHARS),
    kind=st.sampled_from(["text", "action"]),
)


def test_an_integer_beyond_64_bits_is_read_as_a_float_as_json_parse_reads_it() -> None:
    """What a browser's ``JSON.parse`` does: echoed as that float, never refused or exact."""
    frame = parse_client_frame(
        '{"type": "ping", "data": [18446744073709551616, -9223372036854775809]}'
    )
    assert frame == Ping([1.8446744073709552e19, -9.223372036854776e18])
    assert json.loads(Pong(frame.data).frame())["data"] == [2.0**64, -(2.0**63)]


@FUZZ
@given(send_messages | st.just(Who()) | st.builds(Ping, finite_json_values))
def test_valid_frames_round_trip(frame: SendMessage | Who | Ping) -> None:
    assert parse_client_frame(frame.frame(), max_chars=100) == frame
    assert parse_client_frame(frame.frame().encode().decode(), max_chars=100) == frame


@FUZZ
@given(st.text(min_size=101, max_size=200).filter(str.strip), st.text(min_size=1, max_size=8))
def test_too_long_keeps_the_client_id(text: str, client_id: str) -> None:
    frame = SendMessage(text, client_id)
    try:
        parse_client_frame(frame.frame(), max_chars=100)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.MESSAGE_TOO_LONG and exc.client_id == client_id
    else:
        raise AssertionError("accepted a message over the limit")


@FUZZ
@given(
    finite_json_values,
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "2E+308"]),
)
def test_non_finite_numbers_are_invalid_json(value: Any, bad: str) -> None:
    """``JSON.parse`` in a browser refuses ``NaN``/``Infinity``: none of them is ever echoed."""
    data = f'{{"type": "ping", "data": [{json.dumps(value)}, {bad}]}}'
    try:
        parse_client_frame(data)
    except ProtocolError as exc:
        assert exc.code == ErrorCode.INVALID_JSON and exc.reason.startswith("invalid JSON: ")
    else:
        raise AssertionError(f"accepted {data}")
