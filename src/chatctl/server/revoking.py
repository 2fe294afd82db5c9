"""``chatctl token revoke``'s work: what is revoked (a token, a token id, or a user's tokens
issued before a time) and storing it where ``chatctl serve`` reads it, found from serve's own
settings (``--broker``/``CHATCTL_BROKER``, ``--redis-url``/``CHATCTL_REDIS_URL``,
``--data-dir``/``CHATCTL_DATA_DIR``, else SQLite in the default data directory):

- SQLite: the ``revocations`` table of its file (the server polls it every 0.5 s);
- Redis (or a cluster): the shared keys under ``--redis-prefix`` (every node polls them);
- memory: there is no store outside the server's process: refused with a usage error that
  points to ``POST /api/revoke`` (docs/http.md), which an admin token reaches from anywhere.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from chatctl.config import data_dir
from chatctl.errors import BrokerError, ConnectError, UsageError
from chatctl.protocol import user_problem
from chatctl.tokens.revocation import Revocation, jti_problem, parse_before, token_revocation

MEMORY_BROKER = (
    "the memory broker keeps no revocations outside the server: revoke through its HTTP API "
    "with an admin token (--server URL, or POST /api/revoke: docs/http.md)"
)


def revocation(target: str | None, *, user: str | None, before: str | None) -> Revocation:
    """What to revoke: ``target`` (a token or a token id), or ``user``'s tokens issued
    before ``before`` (default now). UsageError for anything else."""
    if (target is None) == (user is None):
        raise UsageError("give a token or a token id, or --user (not both)")
    if user is None:
        if before is not None:
            raise UsageError("--before goes with --user")
        assert target is not None
        if "." in target:
            return token_revocation(target)
        problem = jti_problem(target)
        if problem is not None:
            raise UsageError(problem)
        return Revocation.token(target, None)
    problem = user_problem(user)
    if problem is not None:
        raise UsageError(f"--user: {problem}")
    try:
        cut = parse_before(before or "now")
    except ValueError as exc:
        raise UsageError(f"--before: {exc}") from None
    return Revocation.user(user, cut)


def store_url(*, broker: str | None, redis_url: str | None, data: Path | None) -> str:
    """The broker ``chatctl serve`` uses with these settings (as its own choice)."""
    chosen = [
        (flag, url) for flag, url in (("--broker", broker), ("--redis-url", redis_url)) if url
    ]
    if len(chosen) == 2 and broker != redis_url:
        raise UsageError("--broker and --redis-url exclude each other (both choose the broker)")
    if chosen:
        return chosen[0][1]
    return f"sqlite://{(data or data_dir()).expanduser().absolute()}/"


def revoke_in_store(entry: Revocation, url: str, *, prefix: str) -> str:
    """Store ``entry`` in the broker at ``url``; returns where it went, for the user."""
    from chatctl.broker.registry import entry_for

    kind = entry_for(url)
    if kind.name == "memory":
        raise UsageError(MEMORY_BROKER)
    if kind.name == "sqlite":
        from chatctl.broker.sqlite.location import database_path, parse_url
        from chatctl.broker.sqlite.revoked import revoke_in_file

        path = database_path(parse_url(url)[0])
        revoke_in_file(path, entry)
        return str(path)
    return asyncio.run(_revoke_in_redis(kind.load(), entry, url, prefix))


async def _revoke_in_redis(cls: object, entry: Revocation, url: str, prefix: str) -> str:
    from chatctl.broker.redis.broker import RedisBroker

    assert isinstance(cls, type) and issubclass(cls, RedisBroker)
    broker = cls(url, prefix=prefix, timeout=5.0)
    try:
        await broker.revoke(entry)
    except BrokerError as exc:
        raise ConnectError(f"the revocation was not stored: {exc}") from None
    finally:
        await broker._disconnect()
    return f"Redis (prefix {prefix})"
