"""Revocations as values (issue 26, part 5): what one covers, how long it is kept, and the
``--before`` times and token ids ``chatctl token revoke`` takes."""

from __future__ import annotations

import pytest

from chatctl.tokens.claims import MAX_TOKEN_LIFETIME, NO_RAW, Claims
from chatctl.tokens.revocation import (
    Revocation,
    RevocationList,
    jti_problem,
    parse_before,
    token_revocation,
)
from support.helpers import make_token

NOW = 1_800_000_000.0


def claims(user: str, jti: str | None, iat: float | None) -> Claims:
    return Claims(user, None, NOW + 60, NO_RAW, jti=jti, iat=iat)


def test_a_token_revocation_covers_that_token_until_its_exp() -> None:
    entry = Revocation.token("abc", NOW + 100)
    revoked = RevocationList([entry])
    assert revoked.reason(claims("alice", "abc", NOW)) == "token revoked"
    assert revoked.reason(claims("alice", "other", NOW)) is None
    revoked.prune(NOW + 99)
    assert len(revoked) == 1
    revoked.prune(NOW + 100)
    assert len(revoked) == 0
    assert Revocation.token("x", None, now=NOW).exp == NOW + MAX_TOKEN_LIFETIME


def test_a_user_revocation_covers_tokens_issued_before_it() -> None:
    revoked = RevocationList([Revocation.user("alice", NOW)])
    reason = revoked.reason(claims("alice", "a", NOW - 1))
    assert reason is not None and reason.startswith("token revoked: tokens of alice issued before")
    assert revoked.reason(claims("alice", "b", NOW)) is None  # issued at the cut: kept
    assert revoked.reason(claims("alice", None, None)) is not None  # no iat: before any time
    assert revoked.reason(claims("bob", "c", NOW - 1)) is None
    # a later cut-off wins, an earlier one changes nothing
    revoked.add(Revocation.user("alice", NOW + 10))
    revoked.add(Revocation.user("alice", NOW - 50))
    assert revoked.reason(claims("alice", "d", NOW + 5)) is not None


def test_an_entry_round_trips_and_junk_reads_as_none() -> None:
    entry = Revocation.user("alice", NOW)
    assert Revocation.from_json(entry.to_json()) == entry
    assert Revocation.from_json("{") is None
    assert Revocation.from_json('{"kind": "x", "key": "a", "exp": 1}') is None


def test_token_revocation_reads_jti_and_exp_of_a_token() -> None:
    token = make_token("alice", ttl=600, now=NOW)
    entry = token_revocation(token)
    assert entry.kind == "jti" and entry.exp == NOW + 600 and len(entry.key) == 16


@pytest.mark.parametrize("good", ["abcDEF_-12", "6f1c2d4e-0b8a-4c1e-9d2f-1a2b3c4d5e6f", "a:b"])
def test_token_ids_of_any_issuer_are_taken(good: str) -> None:
    assert jti_problem(good) is None


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "ключ", "a/b"])
def test_other_text_is_not_a_token_id(bad: str) -> None:
    assert jti_problem(bad) is not None


def test_before_times() -> None:
    assert parse_before("now", now=NOW) == NOW
    assert parse_before("1799999000", now=NOW) == 1_799_999_000
    # NOW is 2027-01-15 08:00:00 UTC
    assert parse_before("2027-01-15T08:00:00Z", now=NOW) == NOW
    assert parse_before("2027-01-15T09:00:00+01:00", now=NOW) == NOW
    assert parse_before("2027-01-15 07:00", now=NOW) == NOW - 3600


@pytest.mark.parametrize(
    ("text", "message"),
    [("yesterday", "not a time"), ("2099-01-01", "in the future"), ("nan", "not a time")],
)
def test_bad_before_times(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_before(text, now=NOW)
