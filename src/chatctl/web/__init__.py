"""The browser chat page that ``chatctl serve`` answers at ``/``: plain HTML, CSS and
JavaScript files shipped in this package (no build step, nothing fetched from elsewhere).

:func:`asset` maps a request path to an :class:`Asset` (bytes, content type, ETag), read once
with :mod:`importlib.resources`; server/http.py turns it into a response with
:data:`SECURITY_HEADERS`. The page opens its WebSocket to the server it came from, so the
server's Origin check lets it in while other sites' pages stay refused.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

#: Only the page's own files, from the page's own origin; no inline script or style, no
#: frames, no plugins, no forms posted anywhere. ``connect-src 'self'`` covers the
#: WebSocket to the same host and port (ws: for http:, wss: for https:; CSP level 3:
#: Chrome since 71, Safari since 16).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)

#: Browsers revalidate on every load (a 304 when nothing changed), so a server upgrade
#: reaches every open tab on its next reload.
CACHE_CONTROL = "no-cache"

#: request path -> (file in this package, Content-Type)
ROUTES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/render.js": ("render.js", "text/javascript; charset=utf-8"),
    "/static/outbox.js": ("outbox.js", "text/javascript; charset=utf-8"),
    "/static/room.js": ("room.js", "text/javascript; charset=utf-8"),
    "/static/compose.js": ("compose.js", "text/javascript; charset=utf-8"),
    "/static/token.js": ("token.js", "text/javascript; charset=utf-8"),
    "/static/state.js": ("state.js", "text/javascript; charset=utf-8"),
    "/static/view.js": ("view.js", "text/javascript; charset=utf-8"),
    "/static/older.js": ("older.js", "text/javascript; charset=utf-8"),
    "/static/direct.js": ("direct.js", "text/javascript; charset=utf-8"),
    "/static/commands.js": ("commands.js", "text/javascript; charset=utf-8"),
    "/static/notify.js": ("notify.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/static/icon.svg": ("icon.svg", "image/svg+xml"),
    "/favicon.ico": ("icon.svg", "image/svg+xml"),
}


@dataclass(frozen=True)
class Asset:
    """One static file, ready to send."""

    body: bytes
    content_type: str
    #: a strong validator: the quoted start of the body's SHA-256
    etag: str

    def matches(self, if_none_match: str | None) -> bool:
        """True when an ``If-None-Match`` header names this version (the answer is a 304)."""
        if not if_none_match:
            return False
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or self.etag in tags


@functools.cache
def asset(path: str) -> Asset | None:
    """The file served at ``path`` (``/``, ``/static/app.js``…), or None if there is none."""
    route = ROUTES.get(path)
    if route is None:
        return None
    name, content_type = route
    body = resources.files(__package__).joinpath(name).read_bytes()
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
