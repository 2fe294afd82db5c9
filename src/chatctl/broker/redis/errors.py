"""What the Redis brokers count as an outage, and how they name a Redis in a log line."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

from redis import exceptions as rx

#: Errors that mean "Redis cannot be reached or cannot write now": the message was not stored.
#: (A cluster refuses with CLUSTERDOWN, MASTERDOWN or TRYAGAIN while a slot moves or a
#: master fails over, and raises ClusterError once its redirections are exhausted.)
UNAVAILABLE = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.ReadOnlyError,
    rx.ClusterError,
    rx.TryAgainError,
    OSError,
)


#: Errors that mean "Redis refused or could not be asked": the command did not run. Anything
#: else (a connection lost or timed out after sending, not replicated in time) may have run.
NOT_SENT = (rx.ReadOnlyError, rx.ClusterDownError, rx.TryAgainError, rx.ResponseError)


#: redis-py's messages for a connection that could not be made or had: nothing was sent
_NO_CONNECTION = ("Timeout connecting to server", "No connection available.")
#: redis-py's message for a pooled connection found closed (by the server) as a command was
#: about to be written on it: nothing was sent
_STALE = "Connection closed by the server before write"


def stale_connection(exc: BaseException) -> bool:
    """Whether ``exc`` is a pooled connection that the server closed while it sat idle (a
    Redis restart, its ``timeout``): the command was not sent, and Redis may well be up."""
    return isinstance(exc, rx.ConnectionError) and str(exc) == _STALE


def maybe_sent(exc: BaseException) -> bool:
    """Whether a command that failed with ``exc`` may have run on Redis all the same: not if
    Redis refused it, or no connection could be made (Redis stopped: connection refused)."""
    if isinstance(exc, NotReplicated):
        return True
    if not isinstance(exc, UNAVAILABLE) or isinstance(exc, NOT_SENT):
        return False
    if str(exc) in _NO_CONNECTION or stale_connection(exc):
        return False
    return not _caused_by(exc, (ConnectionRefusedError, socket.gaierror))


class NotReplicated(rx.RedisError):
    """Stored, but fewer than ``wait_replicas`` replicas confirmed it in time: not acked."""


def _caused_by(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def redact(url: str) -> str:
    """``url`` without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))
