"""One connection attempt: the WebSocket handshake with the token, its failures as exceptions.

Errors are split in two:

- final (raised at once): HTTP 401 -> :class:`AuthError`, 403 -> :class:`PermissionDenied`
  (or :class:`~chatctl.errors.Removed` when its reason says a moderator banned the user),
  400/404 or a malformed URL -> :class:`UsageError`, an untrusted TLS certificate ->
  :class:`ConnectError`. Retrying would give the same answer.
- retryable (:class:`Retryable`): refused, reset or timed-out connections, HTTP 5xx, a
  connection dropped before or after the welcome. The stream retries them with capped
  exponential backoff and jitter until its deadline, then raises :class:`ConnectError` with
  the last reason ("cannot connect to ws://…: connection refused").
"""

from __future__ import annotations

import errno
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from chatctl import __version__
from chatctl.client.sanitize import one_line
from chatctl.client.settings import ClientSettings
from chatctl.errors import AuthError, ConnectError, PermissionDenied, Removed, UsageError
from chatctl.protocol import MAX_FRAME_BYTES, CloseCode

#: Seconds to wait for the TCP+TLS+HTTP handshake, then for the welcome frame.
OPEN_TIMEOUT = 10.0


class Retryable(Exception):
    """A connection attempt failed in a way that may succeed later; ``str()`` says why."""


def describe_os_error(exc: BaseException) -> str:
    """A short human reason for a socket error ("connection refused", "timed out"…)."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    if "Connect call failed" in text or "[Errno 111]" in text:
        return "connection refused"
    strerror = getattr(exc, "strerror", None)
    return (strerror or text or type(exc).__name__).lower()


def _ssl_context(settings: ClientSettings) -> Any:
    import ssl

    ctx = ssl.create_default_context()
    if settings.cafile is not None:
        ctx.load_verify_locations(cafile=str(settings.cafile.expanduser()))
    return ctx


async def open_connection(
    settings: ClientSettings, room: str, url: str, token: str
) -> ClientConnection:
    """One connection attempt with ``Authorization: Bearer TOKEN``."""
    kwargs: dict[str, Any] = {}
    if url.startswith("wss://"):
        kwargs["ssl"] = _ssl_context(settings)
    try:
        return await connect(
            url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=OPEN_TIMEOUT,
            compression=None,
            max_size=MAX_FRAME_BYTES * 16,
            max_queue=64,
            user_agent_header=f"chatctl/{__version__}",
            **kwargs,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        body = (exc.response.body or b"").decode(errors="replace").strip()
        reason = one_line(body.splitlines()[0] if body else exc.response.reason_phrase)
        if status == 401:
            raise AuthError(f"authentication failed: {reason}") from None
        if status == 403:
            if reason == f"banned from {room}" or reason.startswith(f"banned from {room} "):
                # a moderator's ban (docs/protocol.md, "Moderation"): not a token's problem
                raise Removed(reason, room=room, code=CloseCode.BANNED, reason=reason) from None
            raise PermissionDenied(f"no permission for room {room}: {reason}") from None
        if status in (400, 404):
            raise UsageError(f"{url.split('?')[0]}: {reason} (HTTP {status})") from None
        raise Retryable(f"HTTP {status} {reason}") from None
    except InvalidURI as exc:
        raise UsageError(f"malformed server URL: {exc}") from None
    except OSError as exc:
        import ssl

        if isinstance(exc, ssl.SSLCertVerificationError):
            raise ConnectError(
                f"TLS certificate of {settings.server} not trusted: "
                f"{exc.verify_message or exc}; pass --cafile"
            ) from None
        raise Retryable(describe_os_error(exc)) from None
    except TimeoutError:
        raise Retryable("timed out") from None
    except (InvalidHandshake, ConnectionClosed, EOFError) as exc:
        raise Retryable(str(exc) or type(exc).__name__) from None
