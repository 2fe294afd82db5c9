"""Token verification: :class:`Verifier` turns a JWT into :class:`~chatctl.tokens.claims.Claims`
or a :class:`~chatctl.errors.TokenError`.

Tokens carry ``sub`` (the user name), ``exp``, ``iat`` and optionally ``rooms`` (a list of
glob patterns such as ``ops`` or ``team-*``; absent means every room), ``read_rooms`` (globs of
rooms it may only read), ``admin`` (``true``: the administration routes), ``jti`` (its id, which
a revocation names), ``dms`` (``false`` forbids direct messages), ``iss`` and ``aud``
(docs/security.md lists every claim).
``exp`` must be a finite time at most :data:`MAX_TOKEN_LIFETIME` ahead: ``NaN``, ``1e300`` or
an ``exp`` in milliseconds is refused, not taken for a token that never expires.
The accepted algorithms are pinned by the key: an HS256 secret accepts only HS256, an RSA
public key only RS256/384/512, an EC public key only ES256/384/512. ``alg: none`` is never
accepted, and a public key can never be used as an HMAC secret (HS/RS confusion).

Whatever a token holds, :meth:`Verifier.verify` raises :class:`TokenError` with a one-line
reason (no newline or control character from the token reaches it) and nothing else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt

from chatctl.errors import TokenError
from chatctl.protocol import user_problem
from chatctl.tokens.claims import MAX_TOKEN_LIFETIME, Claims
from chatctl.tokens.keys import HMAC_ALGORITHMS, key_bytes, load_public_key
from chatctl.tokens.text import format_time, one_line


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
        return self.algorithms == other.algorithms and key_bytes(self.key) == key_bytes(other.key)

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
        read_rooms = claims.get("read_rooms", [])
        if not isinstance(read_rooms, list) or not all(isinstance(r, str) for r in read_rooms):
            raise TokenError("token read_rooms claim must be a list of patterns")
        mod = claims.get("mod", [])
        if not isinstance(mod, list) or not all(isinstance(r, str) for r in mod):
            raise TokenError("token mod claim must be a list of room patterns")
        jti = claims.get("jti")
        if jti is not None and not isinstance(jti, str):
            raise TokenError("token jti claim must be a string")
        iat = self._issued(claims.get("iat"))
        admin = claims.get("admin", False)
        if not isinstance(admin, bool):
            raise TokenError("token admin claim must be true or false")
        if not isinstance(claims.get("dms", True), bool):
            raise TokenError("token dms claim must be true or false")
        return Claims(
            user,
            None if rooms is None else tuple(rooms),
            exp,
            claims,
            read_rooms=tuple(read_rooms),
            jti=jti,
            iat=iat,
            admin=admin,
            mod_rooms=tuple(mod),
        )

    @staticmethod
    def _issued(iat: object) -> float | None:
        """``iat`` as a float (None when absent), or TokenError unless a finite number."""
        if iat is None:
            return None
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise TokenError("token iat claim is not a number")
        try:
            when = float(iat)
        except OverflowError:
            when = math.inf
        if not math.isfinite(when):
            raise TokenError("token iat claim is not a finite number")
        return when

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
