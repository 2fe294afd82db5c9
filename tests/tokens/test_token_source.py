"""Token sources and renewal times, as plain function calls."""

from __future__ import annotations

import pytest

from chatctl.tokens.source import Token, TokenSource, TokenUnavailable, fixed_source
from support.helpers import make_token


def test_a_token_is_read_without_verifying_it_and_never_shown() -> None:
    value = make_token("alice", ttl=600)
    token = Token.parse(value)
    assert token.sub == "alice" and token.exp is not None and token.iat is not None
    assert value not in repr(token) and value not in repr(TokenSource(lambda: value, "x"))
    assert Token.parse("not-a-jwt") == Token("not-a-jwt")


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [(3600.0, 60.0), (600.0, 60.0), (100.0, 20.0), (3.0, 1.0), (1.0, 1.0)],
)
def test_renewal_starts_a_fifth_of_the_lifetime_before_exp(lifetime: float, margin: float) -> None:
    token = Token("t", exp=1000.0 + lifetime, iat=1000.0)
    assert token.renew_at() == pytest.approx(1000.0 + lifetime - margin)
    assert Token("t").renew_at() is None


def test_sources() -> None:
    values = iter(["a.b.c", "d.e.f", "two words"])
    source = TokenSource(lambda: next(values), "--token-command")
    assert source.get().value == "a.b.c" and source.get().value == "a.b.c"
    assert source.refresh().value == "d.e.f"
    with pytest.raises(TokenUnavailable, match="--token-command: not a token"):
        source.refresh()
    assert source.current is not None and source.current.value == "d.e.f"  # kept
    fixed = fixed_source("a.b.c", "CHATCTL_TOKEN")
    assert fixed.refresh() is fixed.refresh() and not fixed.renewable
