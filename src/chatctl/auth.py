"""JWT issue and verification.

Tokens carry ``sub`` (the user name), ``exp``, ``iat`` and optionally ``rooms`` (a list of
glob patterns such as ``ops`` or ``team-*``; absent means every room), ``iss`` and ``aud``.
``exp`` must be a finite time at most :data:`MAX_TOKEN_LIFETIME` ahead: ``NaN``, ``1e300`` or
an ``exp`` in milliseconds is refused, not taken for a token that never expires.
The accepted algorithms are pinned by the key: an HS256 secret accepts only HS256, an RSA
public key only RS256/384/512, an EC public key only ES256/384/512. ``alg: none`` is never
accepted, and a public key can never be used as an HMAC secret (HS/RS confusion).

Whatever a token holds, :meth:`Verifier.verify` raises :class:`TokenError` with a one-line
reason (no newline or control character from the token reaches it) and nothing else.
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jwt

from chatctl.errors import ConfigError, PermissionDenied, TokenError
from chatctl.protocol import user_problem

#: the ``raw`` of claims kept without their payload: one empty mapping for all of them
NO_RAW: Mapping[str, Any] = MappingProxyType({})

HMAC_ALGORITHMS = ["HS256"]
RSA_ALGORITHMS = ["RS256", "RS384", "RS512"]
EC_ALGORITHMS = ["ES256", "ES384", "ES512"]
#: The furthest ``exp`` a token may have, in seconds from now (ten years).
MAX_TOKEN_LIFETIME = 10 * 365 * 86400


@dataclass(frozen=True, slots=True)  # a server keeps one per connection: no __dict__
class Claims:
    user: str
    rooms: tuple[str, ...] | None
    exp: float | None
    #: the whole decoded payload (empty in the claims a server keeps: see NO_RAW)
    raw: Mapping[str, Any]

    def allows(self, room: str) -> bool:
        if self.rooms is None:
            return True
        return any(fnmatch.fnmatchcase(room, pattern) for pattern in self.rooms)

    def check_room(self, room: str) -> None:
        if not self.allows(room):
            raise PermissionDenied(f"token for {self.user} does not allow room {room}")


def load_public_key(path: Path) -> tuple[Any, list[str]]:
    """Load a PEM public key and the algorithms it may verify."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM public key: {exc}") from None
    if isinstance(key, rsa.RSAPublicKey):
        return key, RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key, EC_ALGORITHMS
    raise ConfigError(f"{path}: only RSA and EC public keys are supported")


def load_private_key(path: Path) -> tuple[Any, str]:
    """Load a PEM private key and the algorithm ``token create`` signs with."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read private key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key, "ES256"
    raise ConfigError(f"{path}: only RSA and EC private keys are supported")


class Verifier:
    """Verifies tokens against one key with pinned algorithms."""

    def __init__(
        self,
        key: Any,
        algorithms: list[str],
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 5.0,
        clock: Callable[[], float] = time.time,
        origin: str = "",
    ) -> None:
        self.key = key
        #: where the key came from, for log lines (a path or a variable name; never the key)
        self.origin = origin
        self.algorithms = algorithms
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.clock = clock

    @classmethod
    def hmac(cls, secret: bytes, **kwargs: Any) -> Verifier:
        return cls(secret, HMAC_ALGORITHMS, **kwargs)

    @classmethod
    def public_key(cls, path: Path, **kwargs: Any) -> Verifier:
        key, algorithms = load_public_key(path)
        kwargs.setdefault("origin", str(path))
        return cls(key, algorithms, **kwargs)

    def same_key(self, other: Verifier) -> bool:
        """True when ``other`` verifies with the same key and algorithms."""
        return self.algorithms == other.algorithms and _key_bytes(self.key) == _key_bytes(other.key)

    def verify(self, token: str) -> Claims:
        """Return the token's claims, or raise :class:`TokenError` saying why it is refused."""
        if not token:
            raise TokenError("missing token")
        if not token.isascii():
            raise TokenError("malformed token: not base64url text")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            # crit, kid, b64... are checked here: a forged header is a 401 like any other
            raise TokenError(f"malformed token: {one_line(str(exc))}") from None
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise TokenError(
                f"token algorithm {one_line(repr(alg))} is not accepted "
                f"(expected {', '.join(self.algorithms)})"
            )
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=self.algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={
                    "require": ["sub", "exp"],
                    "verify_exp": False,  # checked below, to say when it expired
                    "verify_aud": self.audience is not None,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError("bad token signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token has no {exc.claim!r} claim") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token issuer is not accepted") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token audience is not accepted") from None
        except jwt.InvalidKeyError:
            raise TokenError("token cannot be verified with this server's key") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {one_line(str(exc))}") from None
        return self._claims(claims)

    def _claims(self, claims: dict[str, Any]) -> Claims:
        exp = self._expiry(claims.get("exp"))
        user = claims.get("sub")
        if not isinstance(user, str):
            raise TokenError("token sub must be a string")
        problem = user_problem(user)
        if problem is not None:
            raise TokenError(f"token sub is not a valid user name: {problem}")
        rooms = claims.get("rooms")
        if rooms is not None and (
            not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms)
        ):
            raise TokenError("token rooms claim must be a list of patterns")
        return Claims(user, None if rooms is None else tuple(rooms), exp, claims)

    def _expiry(self, exp: object) -> float:
        """``exp`` as a float, or TokenError unless it is a finite time not yet past and at most
        MAX_TOKEN_LIFETIME ahead (an issuer bug must not mint a token that never expires)."""
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise TokenError("token exp claim is not a number")
        try:
            when = float(exp)
        except OverflowError:  # an integer of hundreds of digits
            when = math.inf
        if not math.isfinite(when):
            raise TokenError("token exp claim is not a finite number (a token must expire)")
        now = self.clock()
        if when > now + MAX_TOKEN_LIFETIME + self.leeway:
            raise TokenError(
                "token exp claim is more than ten years ahead (exp is in seconds, not milliseconds)"
            )
        if when + self.leeway < now:
            raise TokenError(f"token expired at {format_time(when)}")
        return when


def _key_bytes(key: Any) -> bytes:
    """A key as bytes to compare: the secret itself, or a public key's DER encoding."""
    if isinstance(key, bytes):
        return key
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    data: bytes = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return data


def one_line(text: str, limit: int = 100) -> str:
    """``text`` as a short printable one-liner: attacker-chosen text (a JWT header's ``crit``
    names, its ``alg``) goes into HTTP bodies and logs, never a newline or control character."""
    if not text.isprintable():
        text = ascii(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_time(when: float) -> str:
    """``2026-12-01 00:53:11 UTC``; the number itself when no calendar date fits it."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    except (OverflowError, OSError, ValueError):
        return repr(when)


def mint(
    key: Any,
    user: str,
    *,
    ttl: float,
    rooms: list[str] | None = None,
    algorithm: str = "HS256",
    issuer: str | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """Create a signed token for ``user`` valid for ``ttl`` seconds (at most ten years)."""
    problem = user_problem(user)
    if problem is not None:
        raise TokenError(f"invalid user name {one_line(user)}: {problem}")
    if not ttl <= MAX_TOKEN_LIFETIME:  # NaN too; a negative ttl mints an expired token
        raise TokenError("a token lives at most ten years (3650d)")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user, "iat": issued, "exp": issued + int(ttl)}
    if rooms:
        claims["rooms"] = rooms
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, key, algorithm=algorithm)


def parse_duration(text: str) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``12h``, ``7d`` or ``1w`` into seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    unit = 1
    if text and text[-1] in units:
        unit = units[text[-1]]
        text = text[:-1]
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a duration such as 90s, 15m, 12h or 7d") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError("a duration must be a positive number")
    return value * unit
