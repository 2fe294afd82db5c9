"""``chatctl token inspect``: a token's header and claims as they are, and whether it verifies."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

from chatctl.config import resolve_secret
from chatctl.errors import ConfigError, TokenError, UsageError
from chatctl.tokens.text import format_time, one_line
from chatctl.tokens.verify import Verifier


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
    for line in permissions(claims):
        print(line)
    print(f"key: {key_origin}")
    print(f"valid: {'yes' if verdict else 'no'} ({reason})")
    return verdict


def permissions(claims: dict[str, Any]) -> list[str]:
    """What the claims allow, in words: the rooms read and written, those only read, the
    rooms it moderates, the administration API, the token's id (what ``chatctl token
    revoke`` names)."""

    def globs(name: str) -> str | None:
        value = claims.get(name)
        if not isinstance(value, list):
            return None
        return ", ".join(one_line(str(v)) for v in value) or "none"

    written = globs("rooms")
    lines = [f"read and write: {'every room' if written is None else written}"]
    read = globs("read_rooms")
    if read is not None:
        lines.append(f"read only: {read}")
    moderated = globs("mod")
    if moderated is not None:
        lines.append(f"moderates: {'every room' if moderated == '*' else moderated}")
    if claims.get("admin") is True:
        lines.append("admin: yes (POST /api/revoke)")
    jti = claims.get("jti")
    lines.append(
        f"id: {one_line(jti) if isinstance(jti, str) else 'none (cannot be revoked alone)'}"
    )
    return lines


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
