"""``chatctl token create`` and ``chatctl token inspect``."""

from __future__ import annotations

import base64
import fnmatch
import json
import math
import string
from pathlib import Path
from typing import Any

from chatctl.auth import (
    MAX_TOKEN_LIFETIME,
    Verifier,
    format_time,
    load_private_key,
    mint,
    one_line,
    parse_duration,
)
from chatctl.client.settings import configured_server, page_link
from chatctl.config import resolve_secret
from chatctl.errors import ConfigError, TokenError, UsageError
from chatctl.protocol import valid_room

#: what a room name is made of (docs/protocol.md: 1-64 of these, the first a letter or digit)
ROOM_FIRST = frozenset(string.ascii_letters + string.digits)
ROOM_CHARS = ROOM_FIRST | frozenset("._-")
MAX_ROOM = 64
ROOM_RULE = "room names are 1-64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"


def room_pattern_problem(pattern: str) -> str | None:
    """Why the glob ``pattern`` matches no valid room name, or None when it matches one.

    The pattern is read as the server matches a token's rooms (``fnmatch.fnmatchcase``:
    ``*``, ``?``, ``[...]``, an unclosed ``[`` a plain character), as a list of steps, each
    the room characters it can match at one position (``*``: any run of them); then the
    positions a name can reach after each step are followed, from 0 to 64."""
    steps: list[frozenset[str] | None] = []  # None: '*'
    i, n = 0, len(pattern)
    while i < n:
        char, i = pattern[i], i + 1
        if char == "*":
            steps.append(None)
        elif char == "?":
            steps.append(ROOM_CHARS)
        elif char == "[":
            j = i + (i < n and pattern[i] == "!")
            j += j < n and pattern[j] == "]"
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: fnmatch reads '[' as itself
                steps.append(frozenset("["))
            else:
                bracket = pattern[i - 1 : j + 1]
                steps.append(frozenset(c for c in ROOM_CHARS if fnmatch.fnmatchcase(c, bracket)))
                i = j + 1
        else:
            steps.append(frozenset(char))
    reach = {0}  # lengths of the room names the steps so far can match
    for step in steps:
        if step is None:
            reach = set(range(min(reach), MAX_ROOM + 1))
        else:
            reach = {
                k + 1 for k in reach if k < MAX_ROOM and step & (ROOM_CHARS if k else ROOM_FIRST)
            }
        if not reach:
            break
    if reach - {0}:
        return None
    return f"--room {pattern!r} matches no room ({ROOM_RULE})"


def create_token(
    *,
    user: str,
    rooms: list[str],
    ttl: str,
    secret_file: Path | None,
    private_key: Path | None,
    issuer: str | None,
    audience: str | None,
) -> str:
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        raise UsageError(f"--ttl {ttl!r}: {exc}") from None
    if seconds > MAX_TOKEN_LIFETIME:
        raise UsageError(f"--ttl {ttl!r}: a token lives at most ten years (3650d)")
    for pattern in rooms:
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
        )
    except TokenError as exc:
        raise UsageError(str(exc)) from None


def join_link(token: str, rooms: list[str], *, server: str | None = None) -> str:
    """The web page link that opens the first of ``rooms`` that is a room name, not a glob
    (``team-*``), on the server the client settings point at (``--server``,
    ``CHATCTL_SERVER``, config.toml)."""
    room = next((r for r in rooms if valid_room(r)), None)
    return page_link(configured_server(server), token, room)


def inspect_token(
    token: str,
    *,
    secret_file: Path | None,
    public_key: Path | None,
    issuer: str | None,
    audience: str | None,
    json_output: bool,
) -> bool:
    """Print the token's header and claims and whether it verifies; return that verdict."""
    header, claims = read_unverified(token)

    if public_key is not None:
        verifier = Verifier.public_key(public_key, issuer=issuer, audience=audience)
        key_origin = str(public_key)
    else:
        source = resolve_secret(secret_file)
        if source is None:
            raise ConfigError(
                "no secret to verify with: set --secret-file, CHATCTL_SECRET or --public-key"
            )
        verifier = Verifier.hmac(source.secret, issuer=issuer, audience=audience)
        key_origin = source.origin
    try:
        verifier.verify(token)
        verdict, reason = True, "verified"
    except TokenError as exc:
        verdict, reason = False, str(exc)

    if json_output:
        print(
            json.dumps(
                {
                    "header": header,
                    "claims": claims,
                    "valid": verdict,
                    "reason": reason,
                    "key": key_origin,
                }
            )
        )
        return verdict
    print(f"header: {json.dumps(header)}")
    print(f"claims: {json.dumps(claims, indent=2)}")
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            print(f"{name}: {format_time(value)}")
    print(f"key: {key_origin}")
    print(f"valid: {'yes' if verdict else 'no'} ({reason})")
    return verdict


def read_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims as they are, unchecked: what ``inspect`` shows, so a token the
    server refuses (a ``crit`` header, an integer ``kid``, ``exp: NaN``) can still be looked at.
    ``NaN``, ``Infinity`` and ``1e999`` are kept as strings, so ``--json`` prints strict JSON."""
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise UsageError("not a JWT: expected three base64url parts separated by dots")
    decoded: list[Any] = []
    for part in parts[:2]:
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            decoded.append(json.loads(raw, parse_constant=str, parse_float=_float_or_text))
        except (ValueError, RecursionError) as exc:  # binascii and Unicode errors included
            raise UsageError(f"not a JWT: {one_line(str(exc))}") from None
    header, claims = decoded
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise UsageError("not a JWT: its header and claims must be JSON objects")
    return header, claims


def _float_or_text(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text
