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

from chatctl.auth import Verifier, mint, parse_duration
from chatctl.errors import PermissionDenied, TokenError
from helpers import SECRET


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
    assert refused(hs, "garbage") == "malformed token"
    assert refused(hs, "") == "missing token"


def test_required_claims(hs: Verifier) -> None:
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    assert "exp" in refused(hs, no_exp)
    no_sub = jwt.encode({"exp": time.time() + 60}, SECRET, algorithm="HS256")
    assert "sub" in refused(hs, no_sub)
    bad_user = jwt.encode({"sub": "a b", "exp": time.time() + 60}, SECRET, algorithm="HS256")
    assert "user name" in refused(hs, bad_user)


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


@pytest.mark.parametrize("text", ["", "abc", "-5m", "0", "5y"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
