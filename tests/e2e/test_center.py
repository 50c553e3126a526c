"""<tocsin-bell> and its notification center, in a real browser against a real server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Harness, fresh_user, state
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser


def bell_label(page: object) -> str:
    return str(page.locator("tocsin-bell button.bell").get_attribute("aria-label"))  # type: ignore[attr-defined]


def test_badge_and_list_update_on_publish(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user)
    badge = page.locator("tocsin-bell .badge")
    assert badge.is_hidden()
    assert bell_label(page) == "Notifications, no unread"

    h.publish(user, "First one")
    h.publish(user, "Second one", body="with a body")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 2")
    assert badge.inner_text() == "2"
    assert bell_label(page) == "Notifications, 2 unread"

    page.locator("tocsin-bell button.bell").click()
    titles = page.locator("tocsin-bell li.row .title")
    assert titles.all_inner_texts() == ["Second one", "First one"]  # newest first
    assert page.locator("tocsin-bell li.row.unread").count() == 2
    assert page.locator("tocsin-bell li.row time").first.inner_text() == "just now"

    # Live while open; a click marks one read (optimistically, then on the server).
    h.publish(user, "Third one")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 3")
    assert titles.first.inner_text() == "Third one"
    page.locator("tocsin-bell li.row", has_text="First one").locator("button.open").click()
    assert badge.inner_text() == "2"
    assert page.locator("tocsin-bell li.row.read .title").all_inner_texts() == ["First one"]
    page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    assert h.unread(user) == 2
    assert page.errors == []  # type: ignore[attr-defined]


def test_badge_caps_at_99_plus(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user)
    with h.srv.publisher() as pub:
        for i in range(100):
            pub.post("/api/notifications", json={"recipients": [user], "type": "bulk",
                                                 "title": f"n{i}"}).raise_for_status()
    page.wait_for_function("() => tocsinClient.state.unreadCount === 100")
    assert page.locator("tocsin-bell .badge").inner_text() == "99+"
    assert bell_label(page) == "Notifications, 100 unread"


def test_xss_payload_renders_as_text(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    payload = "<img src=x onerror=alert(1)>"
    h.publish(user, payload, body="<script>alert(2)</script><b>bold</b>", priority="high")
    toast = page.locator("tocsin-toasts .toast")
    toast.wait_for()
    assert toast.locator(".title").inner_text() == payload
    page.locator("tocsin-bell button.bell").click()
    row = page.locator("tocsin-bell li.row").first
    assert row.locator(".title").inner_text() == payload
    assert row.locator(".body").inner_text() == "<script>alert(2)</script><b>bold</b>"
    # No element was created from the payload anywhere, in the page or in shadow roots.
    assert page.locator("img").count() == 0
    assert page.locator("tocsin-bell b, tocsin-toasts b, tocsin-bell script").count() == 0
    row.locator("button.open").click()
    page.wait_for_function("() => tocsinClient.state.unreadCount === 0")
    assert page.evaluate("window.__opened") == []  # no url, nothing opened
    assert dialogs == []

    # The server refuses non-http(s) urls; the client refuses them again on its own.
    checked = page.evaluate("""async () => {
      const { safeUrl } = await import("/static/tocsin/tocsin.js");
      return ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,x",
              "vbscript:x", "/inbox/1", "https://example.com/a"].map(safeUrl);
    }""")
    assert checked == [None, None, None, None, f"{h.srv.url}/inbox/1", "https://example.com/a"]

    # An http(s) url is followed.
    h.publish(user, "Has a link", url="https://example.com/x?y=1")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
    page.locator("tocsin-bell li.row", has_text="Has a link").locator("button.open").click()
    page.wait_for_function("() => window.__opened.length === 1")
    assert page.evaluate("window.__opened") == ["https://example.com/x?y=1"]


def test_keyboard_only_use_of_the_center(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    for t in ("Oldest", "Middle", "Newest"):
        h.publish(user, t)
    page = h.open(h.context(), user)
    kb = page.keyboard
    active = ("() => { const b = document.querySelector('tocsin-bell');"
              " const a = b.shadowRoot.activeElement; return a ? (a.dataset.id ? 'item:' +"
              " a.closest('li').querySelector('.title').textContent : a.className || a.tagName)"
              " : (document.activeElement && document.activeElement.tagName); }")

    kb.press("Tab")  # the bell is the first stop on the page
    assert page.evaluate(active) == "bell"
    kb.press("Enter")
    panel = page.locator("tocsin-bell .panel")
    assert panel.is_visible()
    assert page.locator("tocsin-bell button.bell").get_attribute("aria-expanded") == "true"
    assert page.evaluate(active) == "item:Newest"  # focus moved into the center
    kb.press("ArrowDown")
    assert page.evaluate(active) == "item:Middle"
    kb.press("End")
    assert page.evaluate(active) == "item:Oldest"
    kb.press("Home")
    assert page.evaluate(active) == "item:Newest"
    kb.press("ArrowDown")
    kb.press("Enter")  # marks "Middle" read
    page.wait_for_function("() => tocsinClient.state.unreadCount === 2")
    assert page.evaluate(active) == "item:Middle"  # focus stays on the item after re-render
    kb.press("Delete")  # dismisses "Middle", focus moves to the next row
    page.wait_for_function("() => tocsinClient.state.notifications.length === 2")
    assert page.evaluate(active) == "item:Oldest"

    # Focus is trapped: many Tabs (and Shift+Tabs) never leave the panel.
    inside = "() => document.activeElement === document.querySelector('tocsin-bell')" \
             " && document.querySelector('tocsin-bell').shadowRoot.activeElement !== null" \
             " && document.querySelector('tocsin-bell').shadowRoot.querySelector('.panel')" \
             ".contains(document.querySelector('tocsin-bell').shadowRoot.activeElement)"
    for _ in range(15):
        kb.press("Tab")
        assert page.evaluate(inside)
    for _ in range(15):
        kb.press("Shift+Tab")
        assert page.evaluate(inside)

    kb.press("Escape")
    assert panel.is_hidden()
    assert page.evaluate(active) == "bell"  # focus returns to the bell
    assert page.locator("tocsin-bell button.bell").get_attribute("aria-expanded") == "false"
    page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    with h.srv.subscriber(user) as sub:
        items = sub.get("/api/notifications").json()["items"]
    assert [i["title"] for i in items] == ["Newest", "Oldest"]


def test_infinite_scroll_grouping_and_filters(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    with h.srv.publisher() as pub:
        for i in range(25):
            pub.post("/api/notifications", json={
                "recipients": [user], "type": "update", "title": f"Update {i:02d}",
                "source": "builds" if i % 2 else "deploys"}).raise_for_status()
        for actor in ("Bob", "Carol", "Dana", "Eve"):
            pub.post("/api/notifications", json={
                "recipients": [user], "type": "like", "title": f"{actor} liked your post",
                "actor": actor, "groupKey": "post-1-likes", "priority": "low",
                "source": "social"}).raise_for_status()
    page = h.open(h.context(), user, pageSize=10)
    assert state(page, "s.notifications.length") == 10
    page.locator("tocsin-bell button.bell").click()

    # The server grouped the 4 likes into one notification, updated in place: one row
    # with the newest title and who liked it (docs/grouping.md).
    likes = page.locator("tocsin-bell .list > li", has_text="liked your post")
    assert likes.count() == 1
    assert likes.locator(".title").first.inner_text() == "Eve, Dana, and 2 others liked your post"
    assert likes.locator(".group-by").inner_text() == "4 updates"

    # Infinite scroll: scrolling the list to the end loads older pages until all are in.
    for _ in range(10):
        if state(page, "s.notifications.length") == 26:
            break
        page.locator("tocsin-bell .scroll").evaluate("el => el.scrollTop = el.scrollHeight")
        page.wait_for_timeout(150)
    assert state(page, "s.notifications.length") == 26  # 25 updates + 1 group
    assert not state(page, "s.hasMore")
    assert page.locator("tocsin-bell .list > li").count() == 26
    assert page.locator("tocsin-bell .list > li.row .title").last.inner_text() == "Update 00"

    # Filters: by type, by source, unread only.
    page.locator("tocsin-bell select[aria-label='Filter by type']").select_option("like")
    assert page.locator("tocsin-bell .list > li").count() == 1
    page.locator("tocsin-bell select[aria-label='Filter by type']").select_option("")
    page.locator("tocsin-bell select[aria-label='Filter by source']").select_option("builds")
    assert page.locator("tocsin-bell .list > li").count() == 12
    page.locator("tocsin-bell select[aria-label='Filter by source']").select_option("")
    page.locator("tocsin-bell .list > li.row", has_text="Update 24").locator("button.open").click()
    page.locator("tocsin-bell .filters input.unread-filter").check()
    assert page.locator("tocsin-bell .list > li").count() == 25
    assert page.locator("tocsin-bell .list > li", has_text="Update 24").count() == 0

    # Mark all read empties the unread-only view and shows the empty state.
    page.locator("tocsin-bell button.all").click()
    assert page.locator("tocsin-bell .list > li").count() == 0
    empty = page.locator("tocsin-bell .empty")
    assert empty.inner_text() == "No notifications match these filters."
    page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    assert h.unread(user) == 0


def test_empty_state_and_escape(h: Harness) -> None:
    need_chromium()
    page = h.open(h.context(), fresh_user())
    page.locator("tocsin-bell button.bell").click()
    assert page.locator("tocsin-bell .empty").inner_text().startswith("You're all caught up")
    assert page.locator("tocsin-bell button.all").is_disabled()
    page.keyboard.press("Escape")
    assert page.locator("tocsin-bell .panel").is_hidden()
    # A click outside closes it too.
    page.locator("tocsin-bell button.bell").click()
    page.mouse.click(1000, 600)
    assert page.locator("tocsin-bell .panel").is_hidden()


def test_failed_action_rolls_back_visibly(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    h.publish(user, "Cannot be marked")
    ctx = h.context()
    page = h.open(ctx, user)
    # Hold the PATCH, so the optimistic state is observable, then let the server refuse it.
    held: list[Any] = []
    page.route(lambda url: "/api/notifications/" in url and "/stream" not in url,
               lambda route: held.append(route) if route.request.method == "PATCH"
               else route.continue_())
    page.locator("tocsin-bell button.bell").click()
    page.locator("tocsin-bell li.row button.toggle").click()
    # Optimistic: read at once.
    assert page.locator("tocsin-bell li.row.read").count() == 1
    assert page.locator("tocsin-bell .badge").is_hidden()
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(50)
    held[0].fulfill(status=500, content_type="application/json",
                    body='{"error":{"code":"internal","message":"Internal server error."}}')
    # Then undone, visibly.
    page.locator("tocsin-bell li.row.unread").wait_for()
    assert page.locator("tocsin-bell .badge").inner_text() == "1"
    err = page.locator("tocsin-bell .error")
    assert "Could not mark “Cannot be marked” as read" in err.inner_text()
    assert "undone" in err.inner_text()
    assert page.locator("tocsin-toasts .toast.local").count() == 1
    assert h.unread(user) == 1


def test_theming_light_dark_and_custom_properties(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    bg = ("() => getComputedStyle(document.querySelector('tocsin-bell').shadowRoot"
          ".querySelector('.panel')).backgroundColor")
    light = h.open(h.context(color_scheme="light"), user)
    dark = h.open(h.context(color_scheme="dark"), user)
    for p in (light, dark):
        p.locator("tocsin-bell button.bell").click()
    assert light.evaluate(bg) == "rgb(255, 255, 255)"
    assert dark.evaluate(bg) == "rgb(29, 33, 41)"
    # theme="light" wins over the OS preference, and --tocsin-* properties over both.
    dark.evaluate("document.querySelector('tocsin-bell').setAttribute('theme', 'light')")
    assert dark.evaluate(bg) == "rgb(255, 255, 255)"
    dark.evaluate("document.querySelector('tocsin-bell').style.setProperty("
                  "'--tocsin-bg', 'rgb(1, 2, 3)')")
    assert dark.evaluate(bg) == "rgb(1, 2, 3)"
    light.evaluate("document.querySelector('tocsin-bell').setAttribute('theme', 'dark')")
    assert light.evaluate(bg) == "rgb(29, 33, 41)"


def test_relative_times(h: Harness) -> None:
    need_chromium()
    page = h.open(h.context(), fresh_user())
    got = page.evaluate("""async () => {
      const { timeAgo } = await import("/static/tocsin/tocsin.js");
      const now = Date.now();
      const ago = [0, 30e3, 2 * 60e3, 59 * 60e3, 3 * 3600e3, 2 * 86400e3];
      const rel = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "short" });
      return [ago.map((d) => timeAgo(now - d, now)), ago.map((d) => timeAgo(now - d, now, "de")),
              [rel.format(-2, "minute"), rel.format(-59, "minute"), rel.format(-3, "hour"),
               rel.format(-2, "day")]];
    }""")
    en, de, intl = got
    # Intl.RelativeTimeFormat in the page's language ("2 min. ago"), "just now" from the
    # catalogue; another locale on request
    assert en == ["just now", "just now", *intl]
    assert de[:2] == ["gerade eben", "gerade eben"] and de[2].startswith("vor 2")


def test_mark_all_read_spares_what_arrives_after_the_click(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    h.publish(user, "seen 1")
    h.publish(user, "seen 2")
    page = h.open(h.context(), user)
    held: list[Any] = []
    page.route(lambda url: url.endswith("/api/notifications/read-all"),
               lambda route: held.append(route))
    page.locator("tocsin-bell button.bell").click()
    page.locator("tocsin-bell button.all").click()
    assert page.locator("tocsin-bell .badge").is_hidden()
    # A notification lands while the request is on its way: it must stay unread.
    h.publish(user, "arrived after the click")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(50)
    held[0].continue_()
    page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    page.wait_for_timeout(200)
    assert h.unread(user) == 1
    assert page.locator("tocsin-bell li.row.unread .title").all_inner_texts() == \
        ["arrived after the click"]


def test_components_work_from_attributes_alone(h: Harness) -> None:
    """The README's embed: no script of the page's own, only the elements' attributes."""
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user, wait=False, path="attrs.html", server=h.srv.url)
    page.wait_for_function("""async () => {
      const { getDefaultClient } = await import("/static/tocsin/tocsin.js");
      const c = getDefaultClient();
      return !!c && c.state.loaded && c.state.connectionStatus === "connected";
    }""")
    h.publish(user, "from attributes", priority="high")
    page.locator("tocsin-bell .badge", has_text="1").wait_for()
    page.locator("tocsin-toasts .toast", has_text="from attributes").wait_for()
    page.locator("tocsin-bell button.bell").click()
    assert page.locator("tocsin-bell li.row .title").all_inner_texts() == ["from attributes"]
