"""The demo (``tocsin demo``): two users in two windows, the playground, the team activity
feed with offline replay, the simulated activity, and the embed instructions."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SPY_JS, wait_connected
from tests.e2e.demo_server import DemoProcess
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser


def open_as(browser: Any, demo: DemoProcess, user: str) -> tuple[Any, Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.add_init_script(SPY_JS)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(f"{demo.url}/?user={user}")
    wait_connected(page)
    page.wait_for_function("() => window.tocsinFeed && tocsinFeed.state.connectionStatus"
                           " === 'connected'")
    return ctx, page


def feed_titles(page: Any) -> list[str]:
    return list(page.locator("#feed li .title").all_inner_texts())


def test_demo_two_users_playground_feed_and_offline_replay(browser: Any,
                                                           demo: DemoProcess) -> None:
    need_chromium()
    actx, alice = open_as(browser, demo, "alice")
    bctx, bob = open_as(browser, demo, "bob")
    try:
        assert alice.locator(".users a[aria-current=page]").inner_text() == "Alice"
        assert bob.locator(".users a[aria-current=page]").inner_text() == "Bob"
        # The seeded inbox: the two seeded likes were grouped by the server into one
        # row (one unread), shown with both actors.
        start = alice.evaluate("tocsinClient.state.unreadCount")
        assert start >= 3
        likes = alice.evaluate("""tocsinClient.state.notifications
          .filter(n => n.type === 'like').map(n => [n.group && n.group.count, n.read])""")
        assert likes == [[2, False]]
        alice.locator("tocsin-bell button.bell").click()
        row = alice.locator("tocsin-bell li", has_text="liked your post").first
        row.wait_for()
        assert "Eve" in row.inner_text() and "Dana" in row.inner_text()
        alice.keyboard.press("Escape")

        # Bob sends Alice a notification from the playground.
        bob.select_option("#pg-to", "alice")
        bob.select_option("#pg-priority", "high")
        bob.fill("#pg-title", "Lunch at noon?")
        bob.fill("#pg-body", "<b>Tacos</b>")
        bob.click("button:has-text('Send notification')")
        bob.locator("#pg-result", has_text="Sent to Alice").wait_for()
        alice.locator("tocsin-toasts .toast", has_text="Lunch at noon?").wait_for()
        assert alice.locator("tocsin-bell .badge").inner_text() == str(start + 1)
        for p in (alice, bob):
            p.locator("#feed li .title", has_text="Bob sent Alice a high notification").wait_for()

        # Alice acts: everyone sees it in the feed.
        alice.locator("tocsin-bell button.bell").click()
        alice.locator("tocsin-bell button.all").click()
        bob.locator("#feed li .title", has_text="Alice marked all notifications read").wait_for()
        alice.keyboard.press("Escape")

        # Alice goes offline: the feed says so; what happens meanwhile replays on return.
        actx.set_offline(True)
        alice.locator("#feed-state", has_text="offline").wait_for()
        assert alice.locator("tocsin-status .banner").is_visible()
        bob.select_option("#pg-to", "carol")
        bob.fill("#pg-title", "For Carol only")
        bob.click("button:has-text('Send notification')")
        bob.locator("#feed li .title", has_text="Bob sent Carol a high notification").wait_for()
        time.sleep(0.3)
        assert "Bob sent Carol a high notification" not in feed_titles(alice)
        actx.set_offline(False)
        replayed = alice.locator("#feed li.replayed .title",
                                 has_text="Bob sent Carol a high notification")
        replayed.wait_for(timeout=5000)
        assert alice.locator("#feed li.replayed .tag").first.inner_text() == "replayed"
        assert alice.locator("#feed-replay").inner_text().startswith("Caught up: 1 update")
        alice.locator("#feed-state", has_text="live").wait_for()
        assert alice.errors == [] and bob.errors == []
    finally:
        actx.close()
        bctx.close()


def test_demo_generator_and_embed_instructions(browser: Any, demo: DemoProcess) -> None:
    need_chromium()
    ctx, page = open_as(browser, demo, "carol")
    try:
        code = page.locator("#embed-code").inner_text()
        assert "<tocsin-bell></tocsin-bell>" in code
        assert "/static/tocsin/define.js" in code
        assert "connect(" in code
        # The embed snippet's module really is served.
        assert httpx.get(demo.url + "/static/tocsin/define.js").status_code == 200

        before = len(feed_titles(page))
        gen = page.locator("#gen")
        gen.click()
        page.locator("#gen[aria-pressed=true]").wait_for()
        page.wait_for_function(f"() => document.querySelectorAll('#feed li').length >= "
                               f"{before + 2}", timeout=10_000)
        gen.click()
        page.locator("#gen[aria-pressed=false]").wait_for()
        assert httpx.get(demo.url + "/demo/api/generator").json()["running"] is False
        generated = {"like", "comment", "order", "incident"}
        classes = page.locator("#feed li").evaluate_all("els => els.map(e => e.className)")
        assert any(c.split()[1].removeprefix("ev-") in generated for c in classes if " " in c)
        assert page.errors == []
    finally:
        ctx.close()


def test_demo_token_route_only_for_demo_users(demo: DemoProcess) -> None:
    need_chromium()
    ok = httpx.get(demo.url + "/demo/api/token", params={"user": "bob"})
    assert ok.status_code == 200 and ok.json()["user"] == "bob"
    bad = httpx.get(demo.url + "/demo/api/token", params={"user": "mallory"})
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "user"


def test_the_first_send_shows_the_product(browser: Any, demo: DemoProcess) -> None:
    """Issue 22 item 6: the playground sends to the signed-in user by default, so a
    newcomer's first click on "Send notification" shows a toast and raises the badge
    (before: it went to Bob and this page only said "Sent to Bob ✓")."""
    need_chromium()
    ctx, page = open_as(browser, demo, "carol")
    try:
        assert page.locator("#pg-to").input_value() == "carol"
        assert page.locator("#pg-to option:checked").inner_text() == "Carol (you)"
        before = page.evaluate("tocsinClient.state.unreadCount")
        title = page.locator("#pg-title").input_value()
        page.get_by_role("button", name="Send notification").click()
        page.locator("#pg-result", has_text="Sent to you ✓").wait_for()
        page.locator("tocsin-toasts .toast", has_text=title).wait_for()
        page.wait_for_function(f"() => tocsinClient.state.unreadCount === {before + 1}")
        badge = page.locator("tocsin-bell .badge")
        assert badge.is_visible() and badge.inner_text() == str(before + 1)
        assert page.errors == []
    finally:
        ctx.close()
