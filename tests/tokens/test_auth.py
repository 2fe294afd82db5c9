"""Token minting and verification: pinned algorithms, expiry, rooms, issuer/audience."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatctl.config import parse_duration
from chatctl.errors import PermissionDenied, TokenError
from chatctl.tokens.claims import MAX_TOKEN_LIFETIME
from chatctl.tokens.mint import mint
from chatctl.tokens.verify import Verifier
from support.helpers import SECRET


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refused(verifier: Verifier, token: str) -> str:
    with pytest.raises(TokenError) as info:
        verifier.verify(token)
    return str(info.value)


@pytest.fixture
def hs() -> Verifier:
    return Verifier.hmac(SECRET)


def test_valid_token(hs: Verifier) -> None:
    claims = hs.verify(mint(SECRET, "alice", ttl=60))
    assert claims.user == "alice" and claims.rooms is None and claims.allows("anything")


def test_expired_token_says_when(hs: Verifier) -> None:
    token = mint(SECRET, "alice", ttl=60, now=time.time() - 3600)
    assert refused(hs, token).startswith("token expired at ")


def test_wrong_signature(hs: Verifier) -> None:
    other = mint(b"another-secret-that-is-long-enough-000", "alice", ttl=60)
    assert refused(hs, other) == "bad token signature"


def test_alg_none_is_refused(hs: Verifier) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "alice", "exp": time.time() + 60}).encode())
    assert "not accepted" in refused(hs, f"{header}.{body}.")


def test_malformed_and_missing(hs: Verifier) -> None:
    assert refused(hs, "garbage") == "malformed token: Not enough segments"
    assert refused(hs, "") == "missing token"


def test_required_claims(hs: Verifier) -> None:
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    assert "exp" in refused(hs, no_exp)
    no_sub = jwt.encode({"exp": time.time() + 60}, SECRET, algorithm="HS256")
    assert "sub" in refused(hs, no_sub)
    bad_user = jwt.encode({"sub": "a b", "exp": time.time() + 60}, SECRET, algorithm="HS256")
    assert "user name" in refused(hs, bad_user)


def forged(header: object, claims: object | None = None) -> str:
    """A token with any header, signed with garbage: what an attacker without the key sends."""
    body = claims if claims is not None else {"sub": "eve", "exp": int(time.time()) + 60}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}.c2ln"


def signed(**raw: str) -> str:
    """A correctly signed token whose claims are ``"sub": "eve"`` and ``raw``, each value
    written as is (``exp="NaN"`` gives ``"exp": NaN``, which no JSON encoder writes)."""
    body = ", ".join(f'"{name}": {value}' for name, value in {"sub": '"eve"', **raw}.items())
    return jwt.api_jws.encode(f"{{{body}}}".encode(), SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"alg": "HS256", "crit": ["x"]}, "malformed token: Unsupported critical extension: x"),
        ({"alg": "HS256", "crit": "x"}, "malformed token: Invalid 'crit' header"),
        ({"alg": "HS256", "kid": 1}, "malformed token: Key ID header parameter must be a string"),
        ({"alg": "HS256", "crit": ["a\nFAKE LOG LINE"]}, "malformed token: Unsupported critical"),
        ({"alg": "HS256", "b64": False}, "malformed token: Payload segment must be empty"),
        ([1], "malformed token: Invalid header string"),
        ({"alg": ["HS256"]}, "token algorithm ['HS256'] is not accepted"),
    ],
)
def test_hostile_headers_are_token_errors(hs: Verifier, header: object, reason: str) -> None:
    message = refused(hs, forged(header))
    assert message.startswith(reason)
    assert message.isprintable()  # no newline from the header reaches a log line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["alg", "crit", "kid", "typ", "b64", "jwk", "x5c", "cty"]) | st.text(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c),
            max_leaves=6,
        )
        | st.sampled_from(["HS256", "RS256", "none", ["b64"], ["exp"]]),
        max_size=4,
    ),
    st.text(max_size=12),
)
def test_any_header_or_junk_is_a_token_error(header: dict[str, object], junk: str) -> None:
    hs = Verifier.hmac(SECRET)
    for token in (forged(header), forged(header) + junk, junk, f"{junk}.{junk}.{junk}"):
        try:
            hs.verify(token)
        except TokenError as exc:
            assert str(exc).isprintable()


def test_non_ascii_token_is_malformed(hs: Verifier) -> None:
    # a lone surrogate (what a shell hands over for invalid UTF-8) made PyJWT raise
    # UnicodeEncodeError
    assert refused(hs, "\udcff.a.b") == "malformed token: not base64url text"
    assert refused(hs, "é.é.é") == "malformed token: not base64url text"


@pytest.mark.parametrize(
    ("exp", "reason"),
    [
        ("NaN", "token exp claim is not a finite number (a token must expire)"),
        ("Infinity", "token exp claim is not a finite number (a token must expire)"),
        ("-Infinity", "token exp claim is not a finite number (a token must expire)"),
        ("1e999", "token exp claim is not a finite number (a token must expire)"),
        ("9" * 400, "token exp claim is not a finite number (a token must expire)"),
        (
            "1e300",
            "token exp claim is more than ten years ahead (exp is in seconds, not milliseconds)",
        ),
        ("-1e300", "token expired at -1e+300"),
    ],
)
def test_exp_must_be_a_finite_time(hs: Verifier, exp: str, reason: str) -> None:
    assert refused(hs, signed(exp=exp)) == reason


def test_exp_bound(hs: Verifier) -> None:
    now = time.time()
    in_ms = int(now * 1000) + 60_000  # an issuer that writes milliseconds
    assert "milliseconds" in refused(hs, signed(exp=str(in_ms)))
    assert "not a number" in refused(hs, signed(exp="true"))
    far = int(now) + MAX_TOKEN_LIFETIME - 60
    assert hs.verify(signed(exp=str(far))).exp == far


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("iat", "NaN", "Issued At claim (iat) must be an integer"),
        ("iat", "Infinity", "Issued At claim (iat) must be an integer"),
        ("iat", "1e300", "The token is not yet valid (iat)"),
        ("nbf", "NaN", "Not Before claim (nbf) must be an integer"),
        ("nbf", "1e300", "The token is not yet valid (nbf)"),
    ],
)
def test_iat_and_nbf_must_be_times(hs: Verifier, claim: str, value: str, reason: str) -> None:
    exp = str(int(time.time()) + 60)
    assert reason in refused(hs, signed(exp=exp, **{claim: value}))


def test_iat_gets_the_same_leeway_as_exp(hs: Verifier) -> None:
    # a token minted by a host whose clock is 2 s ahead is accepted, like a 2 s old exp
    assert hs.verify(mint(SECRET, "alice", ttl=60, now=time.time() + 2)).user == "alice"


@pytest.mark.parametrize(
    ("user", "char"),
    [
        ("alice\u200b", "U+200B ZERO WIDTH SPACE"),
        ("\u202ealice", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("al\u00adice", "U+00AD SOFT HYPHEN"),
        ("ali\u200dce", "U+200D ZERO WIDTH JOINER"),
        ("alice\u00a0", "U+00A0 NO-BREAK SPACE"),
        ("alice\u2028", "U+2028 LINE SEPARATOR"),
        ("alice\ue000", "U+E000 Co"),
        ("alice\U000e0001", "U+E0001 LANGUAGE TAG"),
        ("alice\x1b[2J", "U+001B Cc"),
    ],
)
def test_invisible_characters_in_sub_are_refused(hs: Verifier, user: str, char: str) -> None:
    token = jwt.encode({"sub": user, "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert refused(hs, token) == (
        f"token sub is not a valid user name: {char} is not allowed in a user name"
    )
    with pytest.raises(TokenError, match="invalid user name"):
        mint(SECRET, user, ttl=60)


def test_visible_unicode_user_names_are_fine(hs: Verifier) -> None:
    for user in ("zoë", "李雷", "bob@example.com", "❤️", "x" * 64):
        assert hs.verify(mint(SECRET, user, ttl=60)).user == user


def test_mint_refuses_lifetimes_without_bound() -> None:
    for ttl in (float("inf"), float("nan"), MAX_TOKEN_LIFETIME + 1):
        with pytest.raises(TokenError, match="ten years"):
            mint(SECRET, "alice", ttl=ttl)
    expired = mint(SECRET, "alice", ttl=-60)  # what tests use to make an expired token
    assert refused(Verifier.hmac(SECRET), expired).startswith("token expired at ")


def test_rooms_claim_limits_rooms(hs: Verifier) -> None:
    claims = hs.verify(mint(SECRET, "bot", ttl=60, rooms=["ops", "team-*"]))
    assert claims.allows("ops") and claims.allows("team-db")
    assert not claims.allows("general") and not claims.allows("ops2")
    with pytest.raises(PermissionDenied):
        claims.check_room("general")


def test_issuer_and_audience_checked_when_configured() -> None:
    strict = Verifier.hmac(SECRET, issuer="https://idp", audience="chat")
    good = mint(SECRET, "alice", ttl=60, issuer="https://idp", audience="chat")
    assert strict.verify(good).user == "alice"
    assert "issuer" in refused(
        strict, mint(SECRET, "alice", ttl=60, issuer="evil", audience="chat")
    )
    assert "audience" in refused(
        strict, mint(SECRET, "alice", ttl=60, issuer="https://idp", audience="other")
    )
    # not configured: not checked
    assert Verifier.hmac(SECRET).verify(mint(SECRET, "a", ttl=60, audience="x")).user == "a"


def write_key_pair(tmp_path: Path, kind: str) -> tuple[object, Path]:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    pub = tmp_path / f"{kind}.pub.pem"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, pub


@pytest.mark.parametrize(("kind", "alg"), [("rsa", "RS256"), ("ec", "ES256")])
def test_public_key_verification(tmp_path: Path, kind: str, alg: str) -> None:
    key, pub = write_key_pair(tmp_path, kind)
    verifier = Verifier.public_key(pub)
    assert verifier.verify(mint(key, "alice", ttl=60, algorithm=alg)).user == "alice"
    # an HS256 token is refused by a public-key server, whatever its secret
    assert "not accepted" in refused(verifier, mint(SECRET, "alice", ttl=60))


def test_hs_rs_key_confusion_is_refused(tmp_path: Path) -> None:
    _, pub = write_key_pair(tmp_path, "rsa")
    # The classic attack: sign HS256 with the server's *public key* bytes as the HMAC secret.
    pem = pub.read_bytes()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "mallory", "exp": int(time.time()) + 60}).encode())
    import hashlib
    import hmac

    sig = b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    forged = f"{header}.{body}.{sig}"
    assert "not accepted" in refused(Verifier.public_key(pub), forged)


def test_mint_refuses_bad_user_names() -> None:
    with pytest.raises(TokenError):
        mint(SECRET, "has space", ttl=60)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("12h", 43200),
        ("7d", 604800),
        ("1w", 604800),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-5m", "0", "5y", "inf", "nan", "1e999d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
