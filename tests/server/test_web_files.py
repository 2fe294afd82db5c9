"""The web page's files over plain HTTP from an in-process server (server/http.py's route):
content types, caching and security headers, 304s, and nothing else served as a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatctl import web
from chatctl.server import ChatServer
from support.harden_helpers import http_get

WEB = Path(web.__file__).parent


@pytest.mark.parametrize(
    ("path", "name", "content_type"),
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/?utm=x", "index.html", "text/html; charset=utf-8"),
        ("/static/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/static/render.js", "render.js", "text/javascript; charset=utf-8"),
        ("/static/outbox.js", "outbox.js", "text/javascript; charset=utf-8"),
        ("/static/style.css", "style.css", "text/css; charset=utf-8"),
        ("/static/icon.svg", "icon.svg", "image/svg+xml"),
    ],
)
async def test_each_file_is_served_with_its_type_and_headers(
    server: ChatServer, path: str, name: str, content_type: str
) -> None:
    status, headers, body = await http_get(server.port, path)
    assert status == 200
    assert body == (WEB / name).read_bytes()
    assert headers["content-type"] == content_type
    assert headers["content-length"] == str(len(body))
    assert headers["content-security-policy"] == web.CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-cache"
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')


async def test_a_current_copy_gets_304_without_a_body(server: ChatServer) -> None:
    _, headers, _ = await http_get(server.port, "/static/app.js")
    etag = headers["etag"]
    status, headers304, body = await http_get(
        server.port, "/static/app.js", headers={"If-None-Match": f'"old", {etag}'}
    )
    assert (status, body) == (304, b"")
    assert headers304["etag"] == etag
    status, _, body = await http_get(
        server.port, "/static/app.js", headers={"If-None-Match": '"old"'}
    )
    assert status == 200 and body


async def test_other_paths_are_not_files(server: ChatServer) -> None:
    for path in ("/static/", "/static/../app.js", "/index.html", "/static/nope.js"):
        status, _, body = await http_get(server.port, path)
        assert status == 404, path
        assert b"rooms live at /ws/{room}" in body


async def test_head_and_other_methods(server: ChatServer) -> None:
    _, get_headers, body = await http_get(server.port, "/static/style.css")
    status, headers, head_body = await http_get(server.port, "/static/style.css", method="HEAD")
    assert (status, head_body) == (200, b"")
    assert headers["content-length"] == get_headers["content-length"] == str(len(body))
    assert headers["etag"] == get_headers["etag"]
    status, headers, body = await http_get(server.port, "/", method="POST")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
