"""``chatctl token revoke --server URL``: a revocation through the server's HTTP API
(``POST /api/revoke``, docs/http.md) with an admin token from the client's settings, for an
operator without a shell on the server's host, or a server on the memory broker.

Exit statuses: 0 revoked; 2 the server refused the request's body (400) or has no such
route; 3 the token is refused or is not an admin token (401, 403); 4 the server cannot be
reached or could not store the revocation (503). Imports only ``http.client``.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

from chatctl.client.settings import ClientSettings
from chatctl.errors import AuthError, ConnectError, UsageError

#: seconds to wait for the server
TIMEOUT = 15.0


def revoke_over_http(settings: ClientSettings, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``/api/revoke``; the server's answer (``revoked`` says what)."""
    scheme, _, rest = settings.server.partition("://")
    host, _, base = rest.partition("/")
    path = f"/{base}".rstrip("/") + "/api/revoke"
    conn: http.client.HTTPConnection
    if scheme == "wss":
        from chatctl.client.connect import _ssl_context

        conn = http.client.HTTPSConnection(host, timeout=TIMEOUT, context=_ssl_context(settings))
    else:
        conn = http.client.HTTPConnection(host, timeout=TIMEOUT)
    headers = {
        "Authorization": f"Bearer {settings.token.get().value}",
        "Content-Type": "application/json",
    }
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        answer = conn.getresponse()
        data = answer.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ConnectError(f"cannot reach {host}: {exc}") from None
    finally:
        conn.close()
    try:
        parsed: Any = json.loads(data)
    except ValueError:
        parsed = None
    reply: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    reason = str(reply.get("reason") or data.decode("utf-8", "replace").strip()[:200])
    status = answer.status
    if status == 200:
        return reply
    if status in (401, 403):
        raise AuthError(f"HTTP {status}: {reason}")
    if status == 503:
        raise ConnectError(f"HTTP 503: {reason}")
    raise UsageError(f"HTTP {status}: {reason}")
