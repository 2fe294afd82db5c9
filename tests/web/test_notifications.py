"""Desktop notifications of the web page (issue 26, item 2), in a real headless Chromium
against a real ``chatctl serve``: permission is asked for on the switch, never on load; while
the tab is hidden a mention of the user or of a highlight word, in any open room, shows a
notification (and nothing else does); clicking it brings the room forward.

The permission is granted in the browser context (or left to be asked). Headless Chromium
keeps every page visible (minimising its window or showing another tab changes nothing), so
the page's visibility is overridden from the test's init script, which also wraps
``window.Notification`` to record what the page constructs: the real notification is still
made."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from support.client_helpers import serving
from support.helpers import ServeProcess, wait_until
from support.webhelpers import badges, link, post_raw, say, wait_online, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]

#: document.hidden under the test's control, and every Notification the page makes, recorded
OBSERVE = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get: () => (hidden ? "hidden" : "visible"),
  });
  window.__setHidden = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  const Real = window.Notification;
  window.__notes = [];
  window.__asked = 0;
  window.Notification = class extends Real {
    constructor(title, options = {}) {
      super(title, options);
      window.__notes.push({ title, body: options.body, tag: options.tag });
      window.__last = this;
    }
    static requestPermission(...args) {
      window.__asked += 1;
      return Real.requestPermission(...args);
    }
  };
})();
"""


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    with serving() as server:
        yield server


def observed(open_page: Opener, url: str, **options: Any) -> Page:
    page = open_page(**options)
    page.add_init_script(OBSERVE)
    page.goto(url)
    return page


def notes(page: Page, count: int) -> list[tuple[str, str]]:
    """(title, body) of the notifications, once there are ``count``."""
    page.wait_for_function("n => window.__notes.length >= n", arg=count)
    return [(n["title"], n["body"]) for n in page.evaluate("window.__notes")]


def test_mentions_and_highlights_notify_while_hidden(srv: ServeProcess, open_page: Opener) -> None:
    page = observed(open_page, link(srv.port, "carol", "nw1"), permissions=["notifications"])
    wait_online(page, "carol")
    switch = page.locator("#notify")
    assert switch.is_visible() and not switch.is_checked()  # off until turned on
    switch.check()
    assert page.evaluate("localStorage.getItem('chatctl.notify')") == "on"
    say(page, "/highlight deploy")
    page.locator(".notice", has_text="highlighting deploy").wait_for()
    say(page, "/join nw2")
    page.locator("#title", has_text="#nw2").wait_for()
    wait_online(page, "carol")

    post_raw(srv.port, "nw1", "dan", ["carol: seen while visible"])  # the tab is shown
    wait_until(lambda: badges(page, "nw1") == ("1", "@1"))
    page.evaluate("__setHidden(true)")
    post_raw(srv.port, "nw1", "dan", ["nothing for you", "CAROL, look at this"])
    assert notes(page, 1) == [("dan in #nw1", "CAROL, look at this")]
    post_raw(srv.port, "nw2", "dan", ["the deployed build", "Deploy done!"])
    assert notes(page, 2)[1:] == [("dan in #nw2", "Deploy done!")]
    say(page, "carol here: deploy")  # your own message
    wait_shown(page, "carol", "carol here: deploy")
    post_raw(srv.port, "nw1", "dan", ["\x1b[31mcarol\x1b[0m again"])
    assert notes(page, 3)[2:] == [("dan in #nw1", "carol again")]  # escapes removed
    tags = page.evaluate("window.__notes.map(n => n.tag)")
    assert tags == ["chatctl:nw1", "chatctl:nw2", "chatctl:nw1"]
    assert len(page.evaluate("window.__notes")) == 3
    assert page.title() == "(4) #nw2 \u2014 chatctl"  # 3 in nw1, 1 (a highlight) in nw2

    # a direct message (DMs are rooms named @USER): no mention needed; not your own
    page.evaluate(
        """() => import("/static/notify.js").then((m) => {
            window.__mention = window.__last;
            m.notifyMessage({ name: "@dan" }, { user: "carol", message: "mine", kind: "text" });
            m.notifyMessage({ name: "@dan" }, { user: "dan", message: "psst", kind: "text" });
        })"""
    )
    assert notes(page, 4)[3:] == [("dan (direct message)", "psst")]
    page.evaluate("window.__notes.pop()")

    # a click on the notification brings the tab and its room forward
    page.evaluate("__setHidden(false)")
    page.evaluate("window.__mention.dispatchEvent(new Event('click'))")
    page.locator("#title", has_text="#nw1").wait_for()
    wait_shown(page, "dan", "CAROL, look at this")

    # turned off: nothing more
    switch.uncheck()
    page.evaluate("__setHidden(true)")
    post_raw(srv.port, "nw1", "dan", ["carol, still there?"])
    wait_shown(page, "dan", "carol, still there?")
    assert len(page.evaluate("window.__notes")) == 3
    assert page.evaluate("window.__asked") == 0  # granted already: never asked


def test_permission_is_asked_on_the_switch_never_on_load(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = observed(open_page, link(srv.port, "erin", "nw3"))
    wait_online(page, "erin")
    assert page.evaluate("Notification.permission") == "default"
    assert page.evaluate("window.__asked") == 0
    page.locator("#notify").click()
    page.wait_for_function("() => window.__asked === 1")
    # headless Chromium answers the question itself: not granted, so the switch stays off
    page.wait_for_function("() => !document.getElementById('notify').checked")
    assert page.evaluate("Notification.permission") != "granted"
    assert page.evaluate("localStorage.getItem('chatctl.notify')") == "off"
    page.evaluate("__setHidden(true)")
    post_raw(srv.port, "nw3", "dan", ["erin, hello"])
    wait_shown(page, "dan", "erin, hello")
    assert page.evaluate("window.__notes.length") == 0
