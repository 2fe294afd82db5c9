"""The page's connection over time: the reconnect label counts down, and a token about to
expire is renewed from a pasted token or a new link, keeping the rooms and the messages
not sent yet."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from support.client_helpers import serving
from support.helpers import ServeProcess, make_token, wait_until
from support.webhelpers import link, say, shown, wait_online, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]


def test_the_reconnect_label_counts_down(open_page: Opener) -> None:
    with serving() as srv:
        page = open_page(link(srv.port, "vera", "down"))
        wait_online(page, "vera")
        srv.stop()
        status = page.locator("#status")
        # the backoff grows to several seconds: then the label must count them down
        handle = page.wait_for_function(
            """() => {
                const m = /^reconnecting in (\\d+) s/.exec(document.getElementById('status')
                    .textContent);
                return m && Number(m[1]) >= 3 ? Number(m[1]) : null;
            }""",
            timeout=30_000,
        )
        seconds = int(handle.json_value())
        page.locator("#status", has_text=f"reconnecting in {seconds - 1} s").wait_for(timeout=3_000)
        assert re.fullmatch(r"reconnecting in \d+ s\u2026", status.text_content() or "")


def test_a_pasted_token_renews_the_sign_in_and_keeps_pending_messages(
    open_page: Opener,
) -> None:
    srv = ServeProcess().start()
    try:
        page = open_page(link(srv.port, "wendy", "renew", ttl=120))
        wait_online(page, "wendy")
        banner = page.locator("#renew")
        banner.wait_for()  # ends within the warning time: said at once
        assert "Your sign-in ends in 2 min" in (banner.text_content() or "")

        srv.stop()
        page.locator("#status[data-state=reconnecting]").wait_for()
        say(page, "typed while offline")
        page.locator(".outbox .msg.pending").wait_for()
        fresh = make_token("wendy", ttl=7200)
        page.locator("#renew-token").fill(fresh)
        page.locator("#renew button").click()
        banner.wait_for(state="hidden")
        assert page.evaluate("sessionStorage.getItem('chatctl.token')") == fresh
        assert page.locator(".outbox .msg.pending").count() == 1  # still waiting

        srv.start()
        wait_online(page, "wendy")
        wait_shown(page, "wendy", "typed while offline")
        page.wait_for_function("() => !document.querySelector('.pending, .outbox li')")
    finally:
        srv.stop()


def test_a_new_link_renews_the_open_connections_without_reconnecting(
    open_page: Opener,
) -> None:
    with serving("--log-level", "debug") as srv:
        page = open_page(link(srv.port, "xena", "one", ttl=100))
        wait_online(page, "xena")
        say(page, "/join two")
        page.locator("#title", has_text="#two").wait_for()
        wait_online(page, "xena")
        page.locator("#renew").wait_for()

        fresh = make_token("xena", ttl=7200)
        page.evaluate("h => { location.hash = h }", urlencode({"token": fresh, "room": "two"}))
        page.locator("#renew").wait_for(state="hidden")
        assert page.url == f"http://127.0.0.1:{srv.port}/"  # the token left the address bar
        say(page, "still connected")
        wait_shown(page, "xena", "still connected")
        assert shown(page) == [("xena", "still connected")]
        # both rooms renewed on their own connections: no new handshake
        wait_until(lambda: srv.read_log().count("token refreshed") == 2)
        assert srv.read_log().count("connect user=xena") == 2
        assert srv.read_log().count("disconnect user=xena") == 0


def test_at_expiry_the_page_asks_for_a_token_and_keeps_the_rooms(open_page: Opener) -> None:
    with serving() as srv:
        # long enough for the warning to be read before expiry on a loaded machine (a 3 s
        # token had expired by the time the second room was open at load 10)
        page = open_page(link(srv.port, "yuri", "first", ttl=10))
        wait_online(page, "yuri")
        say(page, "/join second")
        page.locator("#title", has_text="#second").wait_for()
        assert "ends in" in (page.locator("#renew").text_content() or "")
        # exp + the server's 5 s leeway: closed with 4001, and the handshake is refused
        page.locator("#login").wait_for(timeout=45_000)
        assert "expired" in (page.locator("#login-error").text_content() or "")
        assert page.locator("#login-room").input_value() == "second"
        assert page.locator("#renew").is_hidden()

        page.locator("#login-token").fill(make_token("yuri", ttl=3600))
        page.locator("#login button[type=submit]").click()
        wait_online(page, "yuri")
        assert page.locator("#title").text_content() == "#second"
        assert page.locator("#rooms li").all_text_contents() == ["#first", "#second"]
        page.locator("#rooms li[data-room='first'][data-state='online']").wait_for()
