"""The web page across server restarts: with a broker whose history survives (Redis), the page
reconnects by itself and resumes without a gap, re-sending what was not acknowledged exactly
once; where the history is lost, it says so."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from support.client_helpers import client_env, run_cli
from support.helpers import RedisServer, ServeProcess
from support.webhelpers import link, say, shown, wait_online, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]


def history(port: int, room: str) -> list[tuple[str, str]]:
    """Every message the room holds, as ``chatctl join --json --since 0 --once`` prints it."""
    res = run_cli("join", room, "--json", "--since", "0", "--once", env=client_env(port, "zed"))
    assert res.returncode == 0, res.stderr
    frames = [json.loads(line) for line in res.stdout.splitlines()]
    return [(f["user"], f["message"]) for f in frames]


def test_a_server_restart_is_resumed_without_a_gap(
    open_page: Opener, redis_server: RedisServer
) -> None:
    node = ServeProcess("--redis-url", redis_server.url).start()
    other = ServeProcess("--redis-url", redis_server.url).start()
    try:
        page = open_page(link(node.port, "alice", "ops"))
        wait_online(page, "alice")
        say(page, "before the restart")
        wait_shown(page, "alice", "before the restart")

        node.stop()  # SIGTERM: the page is closed with 1012 and starts reconnecting
        page.locator("#status[data-state=reconnecting]").wait_for()
        say(page, "typed while the server was down")
        pending = page.locator(".outbox .msg.pending")
        pending.wait_for()
        assert pending.locator(".state").text_content() == "waiting for the connection"
        # the room goes on without this node
        posted = run_cli(
            "send", "ops", env=client_env(other.port, "bob"), input="missed 1\nmissed 2\n"
        )
        assert posted.returncode == 0, posted.stderr

        node.start()  # same port: the page finds it again by itself
        wait_online(page, "alice")
        wait_shown(page, "alice", "typed while the server was down")
        page.wait_for_function("() => !document.querySelector('.pending, .outbox li')")
        expected = [
            ("alice", "before the restart"),
            ("bob", "missed 1"),
            ("bob", "missed 2"),
            ("alice", "typed while the server was down"),
        ]
        assert shown(page) == expected
        assert page.locator(".notice").count() == 0  # recovered: nothing missed
        assert history(other.port, "ops") == expected  # stored once, in this order
    finally:
        node.stop()
        other.stop()


def test_own_messages_stay_pending_until_acknowledged(
    open_page: Opener, redis_server: RedisServer
) -> None:
    node = ServeProcess("--redis-url", redis_server.url).start()
    try:
        page = open_page(link(node.port, "carol", "slow"))
        wait_online(page, "carol")
        redis_server.pause()  # the broker cannot store it yet: no ack, no delivery
        try:
            say(page, "not stored yet")
            page.locator(".outbox .msg.pending", has_text="not stored yet").wait_for()
            assert shown(page) == []
            page.reload()  # the unacknowledged message survives a reload of the tab
            page.locator(".outbox .msg.pending", has_text="not stored yet").wait_for()
        finally:
            redis_server.resume()
        page.wait_for_function("() => !document.querySelector('.pending, .outbox li')")
        # sent twice (before and after the reload) with one client_id: stored once
        assert shown(page) == [("carol", "not stored yet")]
        assert history(node.port, "slow") == [("carol", "not stored yet")]
    finally:
        node.stop()


def test_lost_history_is_announced(open_page: Opener) -> None:
    node = ServeProcess("--memory").start()  # a restart loses the history
    try:
        page = open_page(link(node.port, "dan", "fleeting"))
        wait_online(page, "dan")
        say(page, "soon forgotten")
        wait_shown(page, "dan", "soon forgotten")
        node.stop()
        page.locator("#status[data-state=reconnecting]").wait_for()
        node.start()
        page.locator(".notice.missed").wait_for()
        wait_online(page, "dan")
        say(page, "after the restart")  # ids start again at 1: still shown
        wait_shown(page, "dan", "after the restart")
        assert shown(page) == [("dan", "soon forgotten"), ("dan", "after the restart")]
    finally:
        node.stop()
