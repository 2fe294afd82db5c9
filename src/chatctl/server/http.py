"""Plain HTTP on the WebSocket port: ``GET /healthz``, ``GET /metrics``, and the ``Origin``
check that keeps other sites' pages from opening WebSockets with a visitor's browser.

Methods: the plain-HTTP pages answer ``GET`` and ``HEAD`` (the same headers, no body); any
other method gets **405** with ``Allow: GET, HEAD``. A WebSocket handshake is a ``GET``: any
other method on ``/ws/{room}`` gets **405** with ``Allow: GET`` before the token is looked at,
and on another path 404. websockets 17 parses every method and hands it to
``process_request`` (its own 405 comes only after, in ``accept``), so this is the layer that
must say no.

``/healthz``  200 ``ok`` while the node accepts connections and its broker can publish and
              deliver; 503 with the reason otherwise (draining, broker down). Load balancers
              take a 503 node out of rotation.
``/metrics``  Prometheus text format (see :mod:`chatctl.server.metrics`).
``/``         the browser chat page and its files under ``/static/`` (see :mod:`chatctl.web`),
              with a strict Content-Security-Policy; 304 for an ``If-None-Match`` that matches.

Malformed requests: websockets closes the connection on what it cannot parse (a bad
request line, a header line without a colon, non-ASCII in the target), answers 431 to an
oversized head, 400 or 426 to a bad WebSocket upgrade; :func:`malformed` adds the checks it
leaves to the application, before anything else looks at the request: more than one
``Host``, none in an HTTP/1.1 request (RFC 9112, 3.2), more than one ``Authorization``, or a
target ``urlsplit`` cannot read (``//[``) is a 400. Bytes pipelined after a request are
held until it is answered (:class:`chatctl.server.wire.ChatConnection`).

Origin: browsers send ``Origin`` with every WebSocket handshake; command-line clients send
none and are never refused for it. A browser request is accepted when its origin is the
server's own (same scheme-less host and port as ``Host``) or matches an ``--allowed-origin``
(exact, or a glob such as ``https://*.example.com``; ``*`` allows every origin).
"""

from __future__ import annotations

import email.utils
import fnmatch
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Protocol
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chatctl import web
from chatctl.server.handshake import WS_PREFIX
from chatctl.server.metrics import CONTENT_TYPE, Metrics


class Site(Protocol):
    """What the plain-HTTP pages use of their server (:class:`chatctl.server.app.ChatServer`
    is one): this module does not import the server that imports it."""

    @property
    def metrics(self) -> Metrics: ...

    def health_problem(self) -> str | None:
        """None when the node serves and its broker works, else why not."""


HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


def plain_response(
    status: HTTPStatus,
    body: str | bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """A complete HTTP response that closes the connection."""
    data = body.encode() if isinstance(body, str) else body
    h = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(data))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            *headers,
        ]
    )
    return Response(status.value, status.phrase, h, data)


#: headers a request may carry once at most: which of two counts is ambiguous, and a proxy
#: in front may pick the other one (request smuggling, RFC 9112 3.2 and 11.2)
SINGLE_HEADERS = ("Host", "Authorization")


def malformed(request: Request) -> Response | None:
    """A 400 for a request websockets let through but no handler should read (see the
    module docstring); None when it is well-formed."""
    for name in SINGLE_HEADERS:
        if len(request.headers.get_all(name)) > 1:
            return bad_request(f"more than one {name} header")
    if request.protocol == "HTTP/1.1" and "Host" not in request.headers:
        return bad_request("an HTTP/1.1 request needs a Host header")
    try:
        urlsplit(request.path)
    except ValueError:
        return bad_request("invalid request target")
    return None


def bad_request(reason: str) -> Response:
    return plain_response(HTTPStatus.BAD_REQUEST, f"bad request: {reason}\n")


def route_http(server: Site, request: Request) -> Response | None:
    """Answer the plain-HTTP pages and every request that is not a ``GET``; None for what is
    left to the handshake (see the module docstring). A ``HEAD`` answer never has a body."""
    path = urlsplit(request.path).path
    page = PAGES.get(path)
    if page is not None:
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed("GET, HEAD")
        response = page(server, request)
    elif request.method == "GET":
        return None
    elif path.startswith(WS_PREFIX):
        response = method_not_allowed("GET")
    else:
        response = plain_response(HTTPStatus.NOT_FOUND, "not found\n")
    if request.method == "HEAD":
        response.body = b""  # Content-Length stays that of the GET (RFC 9110, 9.3.2)
    return response


def _health(server: Site, request: Request) -> Response:
    problem = server.health_problem()
    if problem is None:
        return plain_response(HTTPStatus.OK, "ok\n")
    return plain_response(HTTPStatus.SERVICE_UNAVAILABLE, problem + "\n")


def _metrics(server: Site, request: Request) -> Response:
    return plain_response(HTTPStatus.OK, server.metrics.render(), content_type=CONTENT_TYPE)


def _web_file(server: Site, request: Request) -> Response:
    page = web.asset(urlsplit(request.path).path)
    assert page is not None  # registered for the paths of web.ROUTES only
    return static_response(page, request.headers.get("If-None-Match"))


def static_response(page: web.Asset, if_none_match: str | None) -> Response:
    """A file of the web page: 200 with the body, or 304 when the browser's copy is current."""
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Type", page.content_type),
            ("Cache-Control", web.CACHE_CONTROL),
            ("ETag", page.etag),
            *web.SECURITY_HEADERS,
        ]
    )
    if page.matches(if_none_match):
        return Response(HTTPStatus.NOT_MODIFIED.value, HTTPStatus.NOT_MODIFIED.phrase, headers)
    headers["Content-Length"] = str(len(page.body))
    return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, page.body)


#: The plain-HTTP pages by path, each answering GET and HEAD.
PAGES: dict[str, Callable[[Site, Request], Response]] = {
    HEALTH_PATH: _health,
    METRICS_PATH: _metrics,
    **dict.fromkeys(web.ROUTES, _web_file),
}


def method_not_allowed(allow: str) -> Response:
    """405 with the ``Allow`` header RFC 9110 requires."""
    return plain_response(
        HTTPStatus.METHOD_NOT_ALLOWED,
        f"method not allowed: use {allow}\n",
        headers=[("Allow", allow)],
    )


class OriginPolicy:
    """Which browser origins may open WebSockets (see the module docstring)."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.patterns = tuple(_normalize(o) for o in allowed)
        self.allow_all = "*" in self.patterns

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None or self.allow_all:
            return True
        norm = _normalize(origin)
        if norm != "null" and host is not None:
            netloc = urlsplit(norm).netloc
            if netloc and netloc == _strip_default_port(host.strip().lower(), norm):
                return True
        return any(fnmatch.fnmatchcase(norm, p) for p in self.patterns)


def _normalize(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _strip_default_port(host: str, origin: str) -> str:
    """``Host`` as an origin would spell it (browsers omit the scheme's default port)."""
    scheme = origin.partition(":")[0]
    default = {"http": ":80", "https": ":443", "ws": ":80", "wss": ":443"}.get(scheme)
    if default and host.endswith(default):
        return host[: -len(default)]
    return host
