"""Issue 10 in the browser against the real server: the preferences panel saving
through ``PUT /api/preferences``, DND making a notification arrive silently, quiet hours
ending in one digest toast, live grouping, snooze on every open page (and back, with the
fake clock), and the publisher's update and retract by idempotency key.

The server runs with ``--test-clock-file`` (quiet hours, DND, the digest and snooze
timers read it); each test first sets it to the real time, so what the browser computes
from ``Date.now()`` (DND "for 1 hour", snooze "for 1 hour") means the same to the server.

No test feeds events to the client any more: every feature below is driven through
the server's routes and stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SPY_JS, Harness, fresh_user, state, wait_connected
from tests.e2e.demo_server import DemoProcess
from tests.support.clock import FAST, Clock
from tests.support.server import ServerProcess, start_server
from tests.support.services import need_chromium
from tests.support.wait import wait_on_page

pytestmark = pytest.mark.browser

KEEP = {"t.duration-medium": 60000, "t.duration-high": 60000}

ROOT = "document.querySelector('tocsin-bell').shadowRoot"
TOASTS = "document.querySelector('tocsin-toasts').shadowRoot"


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Clock]]:
    need_chromium()
    tmp = tmp_path_factory.mktemp("e2e-attention")
    clock = Clock(tmp / "clock")
    clock.set(now_ms())
    srv = start_server(tmp, extra=[*FAST, *clock.flags])
    yield srv, clock
    srv.stop()


@pytest.fixture(scope="module")
def server(clocked: tuple[ServerProcess, Clock]) -> ServerProcess:
    return clocked[0]


@pytest.fixture
def clock(clocked: tuple[ServerProcess, Clock]) -> Clock:
    c = clocked[1]
    c.set(now_ms())
    return c


def now_ms() -> int:
    return int(time.time() * 1000)


def toast_titles(page: Any) -> list[str]:
    return list(page.locator("tocsin-toasts .toast .title").all_inner_texts())


def badge(page: Any) -> str:
    b = page.locator("tocsin-bell .badge")
    return "" if b.is_hidden() else str(b.inner_text())


def publish(h: Harness, user: str, title: str, **kw: Any) -> dict[str, Any]:
    with h.srv.publisher() as pub:
        body = {"recipients": [user], "type": kw.pop("type", "comment"), "title": title, **kw}
        r = pub.post("/api/notifications", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def prefs(h: Harness, user: str) -> dict[str, Any]:
    with h.srv.subscriber(user) as sub:
        r = sub.get("/api/preferences")
        assert r.status_code == 200, r.text
        return dict(r.json())


def test_preferences_panel_saves_to_the_server(h: Harness, clock: Clock) -> None:
    u = fresh_user()
    page = h.open(h.context(), u)
    page.locator("tocsin-bell .bell").click()
    btn = page.locator("tocsin-bell .prefs-btn")
    btn.click()
    assert btn.get_attribute("aria-expanded") == "true"
    zone = page.locator("tocsin-bell .quiet-zone")
    assert zone.input_value() == page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    page.locator("tocsin-bell .dnd-hour").click()
    page.wait_for_function(f"() => {ROOT}.querySelector('.dnd-state')?.textContent"
                           ".startsWith('On until')")
    page.locator("tocsin-bell .quiet-on").check()
    page.wait_for_function(f"() => !{ROOT}.querySelector('.quiet-on')?.disabled")

    def saved() -> dict[str, Any] | None:
        p = prefs(h, u)
        return p if p["quietHours"] else None

    p = wait_on_page(page, saved, 10, "the quiet hours saved on the server", interval=0.1)
    assert p["dnd"]["until"] > now_ms() + 3_500_000  # "for 1 hour", as the server has it
    assert p["dnd"]["since"] >= clock.now
    assert p["quietHours"]["start"] == "22:00" and p["quietHours"]["end"] == "07:00"
    assert p["quietHours"]["timezone"] == zone.input_value()
    # A fresh page shows what the server holds.
    other = h.open(h.context(), u)
    other.locator("tocsin-bell .bell").click()
    other.locator("tocsin-bell .prefs-btn").click()
    other.wait_for_function(f"() => {ROOT}.querySelector('.dnd-state')?.textContent"
                            ".startsWith('On until')")
    assert other.locator("tocsin-bell .quiet-on").is_checked()
    other.locator("tocsin-bell .dnd-off").click()
    wait_on_page(other, lambda: prefs(h, u)["dnd"] is None, 10,
                 "DND turned off on the server", interval=0.1)
    assert page.errors == [] and other.errors == []  # type: ignore[attr-defined]


def test_dnd_for_an_hour_makes_the_next_notification_silent(h: Harness, clock: Clock) -> None:
    u = fresh_user()
    page = h.open(h.context(), u, **KEEP)
    page.locator("tocsin-bell .bell").click()
    page.locator("tocsin-bell .prefs-btn").click()
    page.locator("tocsin-bell .dnd-hour").click()
    wait_on_page(page, lambda: prefs(h, u)["dnd"], 10, "DND saved on the server", interval=0.1)
    page.keyboard.press("Escape")
    reply = publish(h, u, "Deploy finished", priority="high")
    assert reply["silent"] == {u: "dnd"}
    page.wait_for_function("() => tocsinClient.state.notifications.length === 1")
    n = state(page, "s.notifications[0]")
    assert n["silent"] is True and n["silentReason"] == "dnd"
    page.wait_for_timeout(500)
    assert toast_titles(page) == []  # no toast
    assert state(page, "s.unreadCount") == 1 and badge(page) == "1"  # but counted
    assert h.unread(u) == 1
    # Off again: the next one interrupts.
    with h.srv.subscriber(u) as sub:
        assert sub.put("/api/preferences", json={"dnd": None}).status_code == 200
    assert "silent" not in publish(h, u, "Build broke", priority="high")
    page.wait_for_function("() => tocsinClient.state.notifications.length === 2")
    page.wait_for_function(f"() => [...{TOASTS}.querySelectorAll('.toast .title')]"
                           ".map(e => e.textContent).join() === 'Build broke'")
    assert badge(page) == "2"


def test_quiet_hours_end_with_one_digest_toast(h: Harness, clock: Clock) -> None:
    u = fresh_user()
    start = datetime.fromtimestamp(clock.now / 1000, UTC).replace(second=0, microsecond=0)
    start_ms = int(start.timestamp() * 1000)
    end_ms = start_ms + 10 * 60_000
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    with h.srv.subscriber(u) as sub:
        r = sub.put("/api/preferences", json={"quietHours": {
            "timezone": "UTC", "start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}})
        assert r.status_code == 200, r.text
    page = h.open(h.context(), u, **KEEP)
    for i in range(3):
        assert publish(h, u, f"quiet {i}", priority="high")["silent"] == {u: "quiet_hours"}
    page.wait_for_function("() => tocsinClient.state.notifications.length === 3")
    page.wait_for_timeout(300)
    assert toast_titles(page) == [] and badge(page) == "3"
    clock.set(end_ms + 1000)  # the window is over: the digest timer fires
    page.wait_for_function(f"() => [...{TOASTS}.querySelectorAll('.toast.digest .title')]"
                           ".some(e => e.textContent === '3 notifications while you were away')",
                           timeout=20_000)
    page.wait_for_timeout(1500)  # past more timer polls: still one
    assert toast_titles(page) == ["3 notifications while you were away"]
    with h.srv.subscriber(u) as sub:
        assert sub.get("/api/preferences/digest").json()["digest"]["count"] == 3


def test_grouped_publishes_update_one_row_counted_once(h: Harness, clock: Clock) -> None:
    u = fresh_user()
    page = h.open(h.context(), u, **KEEP)
    page.locator("tocsin-bell .bell").click()
    ids = set()
    # Issue 22 item 7: the title is said of the group's people, each counted once (Alice
    # likes twice), by the server's distinct count; the detail line counts the updates.
    said = ["Alice liked your post", "Bob and Alice liked your post",
            "Alice and Bob liked your post", "Carol, Alice, and Bob liked your post"]
    for actor, title in zip(("Alice", "Bob", "Alice", "Carol"), said, strict=True):
        r = publish(h, u, f"{actor} liked your post", type="like", actor=actor,
                    groupKey="post-42-likes")
        ids.add(r["ids"][u])
        page.wait_for_function(f"() => {ROOT}.querySelector('.row .title')?.textContent"
                               f" === '{title}'")
        assert page.locator("tocsin-bell li.row").count() == 1
    assert len(ids) == 1  # one notification id for the whole group
    page.wait_for_function(f"() => {ROOT}.querySelector('.group-by')?.textContent"
                           " === '4 updates'")
    assert page.locator("tocsin-bell li.row").count() == 1
    assert state(page, "s.unreadCount") == 1 and badge(page) == "1"
    assert h.unread(u) == 1


def test_rows_of_one_group_have_one_header_that_expands_by_keyboard(h: Harness) -> None:
    """Issue 22 item 7: rows the center groups by `groupKey` (a read group and the one
    that grew after it) have one header said of their people, each once, that stays
    the same as rows change, and a visible "Show all" that Enter toggles."""
    u = fresh_user()
    first = publish(h, u, "Eve liked your post", type="like", actor="Eve", groupKey="p-7")
    with h.srv.subscriber(u) as sub:
        assert sub.patch(f"/api/notifications/{first['ids'][u]}",
                         json={"read": True}).status_code == 200
    publish(h, u, "Dana liked your post", type="like", actor="Dana", groupKey="p-7")
    page = h.open(h.context(), u)
    page.wait_for_function("() => tocsinClient.state.notifications.length === 2")
    page.locator("tocsin-bell .bell").focus()
    page.keyboard.press("Enter")
    header = page.locator("tocsin-bell li.group > .row .open")
    assert header.locator(".title").inner_text() == "Dana and Eve liked your post"
    assert header.locator(".expand").inner_text() == "Show all"
    assert header.get_attribute("aria-expanded") == "false"
    # Eve again (one person twice): the same people, the same wording.
    publish(h, u, "Eve liked your post", type="like", actor="Eve", groupKey="p-7")
    page.wait_for_function(f"() => {ROOT}.querySelector('li.group .count')?.textContent"
                           " .startsWith('2 notifications')")
    page.wait_for_function(f"() => {ROOT}.querySelector('li.group > .row .title')?.textContent"
                           " === 'Eve and Dana liked your post'")
    header.focus()
    page.keyboard.press("Enter")
    assert header.get_attribute("aria-expanded") == "true"
    assert header.locator(".expand").inner_text() == "Show less"
    assert page.locator("tocsin-bell li.group .children li.row").count() == 2
    assert page.errors == []  # type: ignore[attr-defined]


def test_snooze_from_the_keyboard_on_every_page_and_back(h: Harness, clock: Clock) -> None:
    u = fresh_user()
    one = h.open(h.context(), u)
    two = h.open(h.context(), u)  # another browser: its own connection
    publish(h, u, "later please")
    publish(h, u, "keep me")
    for p in (one, two):
        p.wait_for_function("() => tocsinClient.state.notifications.length === 2")
    one.locator("tocsin-bell .bell").click()
    row = one.locator("tocsin-bell li.row", has_text="later please")
    row.locator(".snooze").focus()
    one.keyboard.press("Enter")  # the durations (issue 22), focus on "For 1 hour"
    one.keyboard.press("Enter")
    for p in (one, two):
        p.wait_for_function("() => tocsinClient.state.notifications.length === 1"
                            " && tocsinClient.state.unreadCount === 1")
        assert state(p, "s.notifications[0].title") == "keep me"
    assert one.locator("tocsin-bell li.row").count() == 1
    assert h.unread(u) == 1
    clock.advance(2 * 3600)  # past the hour: it comes back, unread
    for p in (one, two):
        p.wait_for_function("() => tocsinClient.state.notifications.length === 2"
                            " && tocsinClient.state.unreadCount === 2", timeout=20_000)
        assert state(p, "s.notifications.find(n => n.title === 'later please').read") is False
    one.wait_for_function(f"() => {ROOT}.querySelectorAll('li.row').length === 2")


def test_publisher_update_and_retract_by_key(h: Harness, clock: Clock) -> None:
    u = fresh_user()
    page = h.open(h.context(), u, **KEEP)  # toasts (an open center hides them)
    center = h.open(h.context(), u, **KEEP)  # another browser, center open
    key = f"order-{fresh_user('k')}"
    publish(h, u, "Order #1040 shipped", priority="high", idempotencyKey=key)
    page.wait_for_function(f"() => [...{TOASTS}.querySelectorAll('.toast .title')]"
                           ".some(e => e.textContent === 'Order #1040 shipped')")
    center.wait_for_function("() => tocsinClient.state.notifications.length === 1")
    center.locator("tocsin-bell .bell").click()
    with h.srv.publisher() as pub:
        r = pub.patch(f"/api/notifications/by-key/{key}",
                      json={"title": "Order #1040 out for delivery"})
        assert r.status_code == 200, r.text
    center.wait_for_function(f"() => {ROOT}.querySelector('.row .title')?.textContent"
                             " === 'Order #1040 out for delivery'")
    page.wait_for_function(f"() => [...{TOASTS}.querySelectorAll('.toast .title')]"
                           ".map(e => e.textContent).join() === 'Order #1040 out for delivery'")
    for p in (page, center):
        assert state(p, "s.notifications.length") == 1 and badge(p) == "1"
    assert center.locator("tocsin-bell li.row").count() == 1
    with h.srv.publisher() as pub:
        r = pub.delete(f"/api/notifications/by-key/{key}")
        assert r.status_code == 200, r.text
    for p in (page, center):
        p.wait_for_function("() => tocsinClient.state.notifications.length === 0")
        assert badge(p) == "" and p.errors == []  # type: ignore[attr-defined]
    page.wait_for_function(f"() => {TOASTS}.querySelectorAll('.toast').length === 0")
    center.wait_for_function(f"() => {ROOT}.querySelectorAll('li.row').length === 0")
    assert h.unread(u) == 0


# ---- the demo (``tocsin demo``): the header's DND toggle and a simulated quiet period ----

def demo_prefs(demo: DemoProcess, user: str) -> dict[str, Any]:
    tok = httpx.get(f"{demo.url}/demo/api/token", params={"user": user}).json()["token"]
    r = httpx.get(f"{demo.url}/api/preferences", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_demo_dnd_toggle_and_quiet_period(browser: Any, demo: DemoProcess) -> None:
    pages = []
    for _ in range(2):
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.add_init_script(SPY_JS)
        ctx.set_default_timeout(10_000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.errors = errors
        page.goto(f"{demo.url}/?user=carol&quietSeconds=3")
        wait_connected(page)
        pages.append(page)
    one, two = pages
    try:
        sel = one.locator("#dnd-select")
        one.wait_for_function("() => document.getElementById('dnd').dataset.state === 'off'")
        sel.select_option("hour")
        one.wait_for_function("() => document.getElementById('dnd').dataset.state === 'on'")
        assert sel.input_value() == "on"
        assert one.locator("#dnd-select option:checked").inner_text().startswith("On until")
        until = demo_prefs(demo, "carol")["dnd"]["until"]
        assert abs(until - (now_ms() + 3_600_000)) < 60_000
        # Another browser shows the server's state (at load; here on becoming visible).
        two.evaluate("() => { __setHidden(true); __setHidden(false); }")
        two.wait_for_function("() => document.getElementById('dnd').dataset.state === 'on'")
        assert two.locator("#dnd-select").input_value() == "on"
        sel.select_option("off")
        one.wait_for_function("() => document.getElementById('dnd').dataset.state === 'off'")
        assert demo_prefs(demo, "carol")["dnd"] is None

        # The quiet period: DND for 3 s, three notifications arrive silently, then one
        # digest toast.
        before = one.evaluate("tocsinClient.state.unreadCount")
        one.locator("#quiet").click()
        one.wait_for_function("() => document.getElementById('dnd').dataset.state === 'on'")
        # (the like joins the seeded likes' group: two new rows, one grown group)
        one.wait_for_function("() => tocsinClient.state.notifications"
                              ".filter(n => n.silentReason === 'dnd').length === 3")
        assert one.evaluate("tocsinClient.state.unreadCount") == before + 2
        assert "silently" in one.locator("#quiet-result").inner_text()
        assert one.locator("tocsin-toasts .toast").count() == 0  # nothing interrupts
        for p in (one, two):
            p.wait_for_function(
                f"() => [...{TOASTS}.querySelectorAll('.toast.digest .title')].some(e =>"
                " e.textContent === '3 notifications while you were away')", timeout=15_000)
        one.wait_for_function("() => document.getElementById('dnd').dataset.state === 'off'")
        assert one.locator("tocsin-toasts .toast").count() == 1
        assert one.errors == [] and two.errors == []
    finally:
        for p in pages:
            p.context.close()
