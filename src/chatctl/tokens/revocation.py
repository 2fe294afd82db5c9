"""Revoked tokens: what one revocation says (:class:`Revocation`), what is revoked now
(:class:`RevocationList`), and reading what an operator gives ``chatctl token revoke``
(:func:`parse_before`, :func:`jti_problem`). No I/O: the server and the brokers keep them.

A revocation names one token by its ``jti``, or every token of a user issued (``iat``) before
a time. Each is kept until ``exp``, when every token it covers has expired anyway: the token's
own ``exp`` for a ``jti`` (ten years ahead when only the id is known), ``before`` plus ten
years (the longest a token lives) for a user's. A token without ``iat`` counts as issued
before any time.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from chatctl.tokens.claims import MAX_TOKEN_LIFETIME, Claims
from chatctl.tokens.text import format_time

#: what a ``jti`` given to ``chatctl token revoke`` may be: chatctl's own are base64url;
#: UUIDs and other issuers' ids fit too
JTI_RE = re.compile(r"[A-Za-z0-9_:-]{1,128}")
JTI_RULE = "1-128 characters from A-Z a-z 0-9 _ - :"

Kind = Literal["jti", "user"]


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revocation: ``kind`` ``jti`` (``key`` is the token id) or ``user`` (``key`` is the
    user name, and every token of theirs issued before ``before`` is revoked); kept until
    ``exp``."""

    kind: Kind
    key: str
    exp: float
    before: float = 0.0

    @classmethod
    def token(cls, jti: str, exp: float | None, *, now: float | None = None) -> Revocation:
        """The revocation of the token ``jti``, kept until its ``exp`` (when known)."""
        if exp is None or not math.isfinite(exp):
            exp = (time.time() if now is None else now) + MAX_TOKEN_LIFETIME
        return cls("jti", jti, exp)

    @classmethod
    def user(cls, user: str, before: float) -> Revocation:
        """Every token of ``user`` issued before ``before``."""
        return cls("user", user, before + MAX_TOKEN_LIFETIME, before)

    @property
    def field(self) -> str:
        """Its name in a store: one entry per token id, one per user."""
        return f"{self.kind}:{self.key}"

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind, "key": self.key, "exp": self.exp, "before": self.before},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Revocation | None:
        """The revocation ``text`` holds, or None when it holds none (a damaged entry)."""
        try:
            obj: Any = json.loads(text)
            kind, key = obj["kind"], obj["key"]
            exp, before = float(obj["exp"]), float(obj.get("before", 0.0))
        except (ValueError, TypeError, KeyError, OverflowError):
            return None
        if kind not in ("jti", "user") or not isinstance(key, str):
            return None
        return cls(kind, key, exp, before)

    def covers(self, claims: Claims) -> bool:
        if self.kind == "jti":
            return claims.jti == self.key
        return claims.user == self.key and (claims.iat is None or claims.iat < self.before)

    def describe(self) -> str:
        """One line for logs and answers (a token id is not a secret; the token is)."""
        if self.kind == "jti":
            return f"token {self.key}"
        return f"every token of {self.key} issued before {format_time(self.before)}"


class RevocationList:
    """What is revoked now: token ids and users' cut-off times, each until its ``exp``."""

    __slots__ = ("_jtis", "_users")

    def __init__(self, entries: Iterable[Revocation] = ()) -> None:
        #: jti -> exp of its entry
        self._jtis: dict[str, float] = {}
        #: user -> (before, exp): the latest cut-off given for the user
        self._users: dict[str, tuple[float, float]] = {}
        for entry in entries:
            self.add(entry)

    def __len__(self) -> int:
        return len(self._jtis) + len(self._users)

    def add(self, entry: Revocation) -> None:
        if entry.kind == "jti":
            self._jtis[entry.key] = max(entry.exp, self._jtis.get(entry.key, 0.0))
        else:
            before, _ = self._users.get(entry.key, (-math.inf, 0.0))
            if entry.before >= before:
                self._users[entry.key] = (entry.before, entry.exp)

    def reason(self, claims: Claims) -> str | None:
        """Why the token of ``claims`` is revoked (a one-line reason), or None."""
        if claims.jti is not None and claims.jti in self._jtis:
            return "token revoked"
        cut = self._users.get(claims.user)
        if cut is not None and (claims.iat is None or claims.iat < cut[0]):
            return f"token revoked: tokens of {claims.user} issued before {format_time(cut[0])}"
        return None

    def prune(self, now: float) -> None:
        """Forget the entries whose tokens have all expired."""
        self._jtis = {k: exp for k, exp in self._jtis.items() if exp > now}
        self._users = {k: v for k, v in self._users.items() if v[1] > now}


def jti_problem(jti: str) -> str | None:
    """Why ``jti`` is not a token id ``chatctl token revoke`` takes, or None."""
    if JTI_RE.fullmatch(jti) is None:
        return f"not a token or a token id ({JTI_RULE}): {jti[:40]!r}"
    return None


def parse_before(text: str, *, now: float | None = None) -> float:
    """``--before``: ``now``, seconds since the epoch, or an ISO 8601 time (UTC unless it
    says otherwise: ``2026-12-06T09:30``, ``2026-12-06 09:30:00+01:00``). ValueError for
    anything else or a time in the future."""
    current = time.time() if now is None else now
    value = text.strip()
    if value.lower() == "now":
        return current
    when: float
    if value.isascii() and value.replace(".", "", 1).isdigit():
        when = float(value)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"not a time: {value[:40]!r} (use now, seconds since 1970, "
                "or 2026-12-06T09:30[:00][Z|+01:00])"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        when = moment.timestamp()
    if not math.isfinite(when):
        raise ValueError(f"not a time: {value[:40]!r}")
    if when > current + 1:
        raise ValueError(f"{format_time(when)} is in the future")
    return when


def token_revocation(token: str) -> Revocation:
    """The revocation of ``token`` (its ``jti``, kept until its ``exp``), read without
    verifying it; UsageError when it is not a JWT or carries no ``jti``."""
    from chatctl.errors import UsageError
    from chatctl.tokens.inspect import read_unverified

    _, claims = read_unverified(token)
    jti = claims.get("jti")
    if not isinstance(jti, str) or jti_problem(jti) is not None:
        raise UsageError(
            "the token has no usable jti: revoke every token of its user (--user, --before)"
        )
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return Revocation.token(jti, None)
    return Revocation.token(jti, float(exp))
