"""The page's files as shipped (nothing from elsewhere, no inline code) and the join link."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatctl import web
from chatctl.client.settings import join_link, page_link
from chatctl.errors import UsageError
from support.client_helpers import run_cli
from support.helpers import chatctl_env

WEB = Path(web.__file__).parent


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, no inline script or style: everything the CSP allows is the page's own."""
    html = (WEB / "index.html").read_text()
    for needle in ("http://", "https://", "<style", "style=", "on" + "click", "<script>"):
        assert needle not in html, needle
    for script in WEB.glob("*.js"):
        js = script.read_text()
        for needle in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function"):
            assert needle not in js, (script.name, needle)
        assert 'setAttribute("style' not in js and ".style." not in js, script.name  # the CSP
    # every script the page imports is served
    assert {f"/static/{p.name}" for p in WEB.glob("*.js")} <= set(web.ROUTES)
    total = sum(p.stat().st_size for p in WEB.iterdir() if p.suffix != ".py")
    # small: read by a person, served without a build step (64,000 until moderation's
    # commands, announcements, tombstones and kick/ban closes took it past)
    assert total < 72_000, total


@pytest.mark.parametrize(
    ("server", "room", "expected"),
    [
        ("ws://127.0.0.1:8000", "ops", "http://127.0.0.1:8000/#token=T.k-n&room=ops"),
        ("wss://chat.example.com", None, "https://chat.example.com/#token=T.k-n"),
        (
            "wss://example.com:8443/chat",
            "a.b",
            "https://example.com:8443/chat/#token=T.k-n&room=a.b",
        ),
    ],
)
def test_page_link(server: str, room: str | None, expected: str) -> None:
    assert page_link(server, "T.k-n", room) == expected


def test_join_link_follows_the_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATCTL_SERVER", "https://chat.example.com")
    assert join_link("T", ["team-*", "ops"]) == "https://chat.example.com/#token=T&room=ops"
    assert join_link("T", []) == "https://chat.example.com/#token=T"
    assert join_link("T", ["x"], server="host:9000").startswith("http://host:9000/#")
    with pytest.raises(UsageError):
        join_link("T", [], server="ftp://nope")


def test_token_create_link_mistakes_are_usage_errors() -> None:
    res = run_cli("token", "create", "--user", "a", "--server", "ws://h:1", env=chatctl_env())
    assert (res.returncode, res.stderr) == (
        2,
        "chatctl: --server is used only with --link or --webhook\n",
    )
    res = run_cli("token", "create", "--user", "a", "--link", "-s", "ftp://h", env=chatctl_env())
    assert res.returncode == 2 and "malformed server URL" in res.stderr
    assert res.stdout == ""
