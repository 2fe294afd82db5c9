"""Making tokens: :func:`mint` signs one; :func:`create_token` is ``chatctl token create``'s
work (its ``--ttl``, key and secret resolved first)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import jwt

from chatctl.config import parse_duration, resolve_secret
from chatctl.errors import ConfigError, TokenError, UsageError
from chatctl.protocol import user_problem
from chatctl.tokens.claims import MAX_TOKEN_LIFETIME
from chatctl.tokens.keys import load_private_key
from chatctl.tokens.rooms import room_pattern_problem
from chatctl.tokens.text import one_line


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
    hook: str | None = None,
    read_rooms: list[str] | None = None,
    admin: bool = False,
    display: bool = False,
    dms: bool = True,
    mod_rooms: list[str] | None = None,
) -> str:
    """Create a signed token for ``user`` valid for ``ttl`` seconds (at most ten years), with
    a fresh ``jti`` (what ``chatctl token revoke`` names). ``read_rooms`` without ``rooms``
    writes ``rooms: []``: the token then reads those rooms and nothing else. ``display``
    lets a webhook token's Slack ``username`` show as a display name. ``dms=False`` forbids
    direct messages (the ``dms`` claim). ``mod_rooms``: globs of the rooms where the user
    is a moderator (the ``mod`` claim)."""
    if display and hook is None:
        raise TokenError("only a webhook token may allow a display name")
    problem = user_problem(user)
    if problem is not None:
        raise TokenError(f"invalid user name {one_line(user)}: {problem}")
    if not ttl <= MAX_TOKEN_LIFETIME:  # NaN too; a negative ttl mints an expired token
        raise TokenError("a token lives at most ten years (3650d)")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": user,
        "iat": issued,
        "exp": issued + int(ttl),
        "jti": new_jti(),
    }
    if rooms or read_rooms:
        claims["rooms"] = rooms or []
    if read_rooms:
        claims["read_rooms"] = read_rooms
    if admin:
        claims["admin"] = True
    if mod_rooms:
        claims["mod"] = mod_rooms
    if not dms:
        claims["dms"] = False
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    if hook is not None:  # a webhook token: posts to this one room at /hooks/TOKEN, nothing else
        claims["hook"] = hook
        claims["rooms"] = [hook]
        claims.pop("read_rooms", None)
        claims.pop("mod", None)
        claims["jti"] = _random_id(18)  # two webhooks of a room never share a URL
        if display:  # its posts may name their sender, shown beside the user (docs/http.md)
            claims["display"] = True
    return jwt.encode(claims, key, algorithm=algorithm)


def new_jti() -> str:
    """A token id: 16 base64url characters (96 random bits)."""
    return _random_id(12)


def _random_id(nbytes: int) -> str:
    """``secrets.token_urlsafe(nbytes)``, drawn again while it starts with ``-``: an id is
    typed as an argument (``chatctl token revoke ID``), where a leading dash reads as an
    option (1 draw in 64)."""
    while (token := secrets.token_urlsafe(nbytes)).startswith("-"):
        pass
    return token


def create_token(
    *,
    user: str,
    rooms: list[str],
    ttl: str,
    secret_file: Path | None,
    private_key: Path | None,
    issuer: str | None,
    audience: str | None,
    hook: str | None = None,
    read_rooms: list[str] | None = None,
    admin: bool = False,
    display: bool = False,
    dms: bool = True,
    mod_rooms: list[str] | None = None,
) -> str:
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        raise UsageError(f"--ttl {ttl!r}: {exc}") from None
    if seconds > MAX_TOKEN_LIFETIME:
        raise UsageError(f"--ttl {ttl!r}: a token lives at most ten years (3650d)")
    for pattern in [*rooms, *(read_rooms or []), *(mod_rooms or [])]:
        problem = room_pattern_problem(pattern)
        if problem is not None:
            raise UsageError(problem)
    if private_key is not None:
        key, algorithm = load_private_key(private_key)
    else:
        source = resolve_secret(secret_file)
        if source is None:
            raise ConfigError(
                "no secret: run 'chatctl serve' once on this host (it creates one), "
                "or set --secret-file or CHATCTL_SECRET"
            )
        key, algorithm = source.secret, "HS256"
    try:
        return mint(
            key,
            user,
            ttl=seconds,
            rooms=rooms,
            algorithm=algorithm,
            issuer=issuer,
            audience=audience,
            hook=hook,
            read_rooms=read_rooms,
            admin=admin,
            display=display,
            dms=dms,
            mod_rooms=mod_rooms,
        )
    except TokenError as exc:
        raise UsageError(str(exc)) from None
