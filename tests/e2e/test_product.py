"""Issue 9: the components on a phone, toasts against the open center, focus after
actions, the empty source filter, the unread tint, and a refused token ("Signed out")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Harness, fresh_user, wait_connected
from tests.support.server import mint
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser

# Device emulation: a 375 px wide phone with touch (an iPhone SE-sized viewport).
PHONE = {"viewport": {"width": 375, "height": 667}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True, "reduced_motion": "reduce"}

LONG_TOASTS: dict[str, Any] = {"t.duration-medium": 60000}
ACTIVE_IN_BELL = """() => {
  const bell = document.querySelector('tocsin-bell');
  const a = bell.shadowRoot.activeElement;
  const panel = bell.shadowRoot.querySelector('.panel');
  return document.activeElement === bell && !!a && panel.contains(a)
    ? (a.className || a.tagName) : null;
}"""


def box(page: Any, selector: str) -> dict[str, float]:
    b = page.locator(selector).first.bounding_box()
    assert b is not None, selector
    return dict(b)


def test_phone_center_is_a_full_width_sheet_with_touch_targets(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(**PHONE), user)
    h.publish(user, "On a phone", body="a body", source="ci")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
    page.locator("tocsin-bell button.bell").tap()
    panel = box(page, "tocsin-bell .panel")
    assert panel["x"] == 0 and panel["width"] == 375  # full width under 480 px
    assert panel["y"] + panel["height"] == pytest.approx(667, abs=1)  # a sheet from the bottom
    for sel in ("button.bell", "button.all", "button.close", "li.row button.toggle",
                "li.row button.dismiss", "li.row button.open", "select"):
        b = box(page, f"tocsin-bell {sel}")
        assert b["width"] >= 44 and b["height"] >= 44, (sel, b)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_phone_toasts_span_the_width(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(**PHONE), user, **LONG_TOASTS)
    h.publish(user, "A toast on a phone")
    toast = page.locator("tocsin-toasts .toast")
    toast.wait_for()
    b = box(page, "tocsin-toasts .toast")
    assert b["x"] == 8 and b["width"] == 375 - 16
    c = box(page, "tocsin-toasts .toast .close")
    assert c["width"] >= 44 and c["height"] >= 44


def test_toasts_do_not_cover_the_open_center(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(**PHONE), user, **LONG_TOASTS)
    h.publish(user, "Before opening")
    page.locator("tocsin-toasts .toast").wait_for()
    page.locator("tocsin-bell button.bell").tap()
    assert page.locator("tocsin-toasts .stack").is_hidden()
    h.publish(user, "Arrived while open")
    # It shows in the center, not as a toast over it.
    page.locator("tocsin-bell li.row .title", has_text="Arrived while open").wait_for()
    assert page.locator("tocsin-toasts .stack").is_hidden()
    # Nothing of the toasts' host is painted over the center's newest row.
    hit = page.evaluate("""() => {
      const r = document.querySelector('tocsin-bell').shadowRoot
        .querySelector('li.row').getBoundingClientRect();
      return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2).tagName;
    }""")
    assert hit == "TOCSIN-BELL"
    page.keyboard.press("Escape")
    # The center showed them: they do not pop up once it closes.
    page.wait_for_timeout(300)
    assert page.locator("tocsin-toasts .toast").count() == 0
    h.publish(user, "After closing")
    page.locator("tocsin-toasts .toast", has_text="After closing").wait_for()


def test_focus_stays_in_the_center_after_mark_all_and_dismissing_the_last(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user)
    h.publish(user, "Only one")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
    page.locator("tocsin-bell button.bell").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(ACTIVE_IN_BELL)
    # Tab from the item back round to "Mark all as read" (the trap wraps).
    for _ in range(10):
        if page.evaluate("document.querySelector('tocsin-bell').shadowRoot.activeElement"
                         ".classList.contains('all')"):
            break
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 0")
    page.wait_for_timeout(100)
    assert page.evaluate(ACTIVE_IN_BELL) is not None  # not <body>
    assert page.evaluate(ACTIVE_IN_BELL) != "all"
    # The Tab trap still works...
    page.keyboard.press("Tab")
    assert page.evaluate(ACTIVE_IN_BELL) is not None
    # ...and so does Delete on the item, then focus stays inside with no items left.
    page.locator("tocsin-bell li.row button.open").focus()
    page.keyboard.press("Delete")
    page.wait_for_function("() => tocsinClient.state.notifications.length === 0")
    page.wait_for_timeout(100)
    assert page.evaluate(ACTIVE_IN_BELL) == "close"
    page.keyboard.press("Escape")
    assert page.locator("tocsin-bell .panel").is_hidden()
    assert page.evaluate("document.querySelector('tocsin-bell').shadowRoot.activeElement"
                         ".classList.contains('bell')")
    assert page.errors == []


def test_source_filter_hidden_without_sources_and_one_item_has_no_blank_strip(
        h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user)
    h.publish(user, "No source here")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
    page.locator("tocsin-bell button.bell").click()
    assert page.locator("tocsin-bell select[aria-label='Filter by source']").is_hidden()
    # One item: the list ends where the row ends (no empty strip under it). Measured
    # once the panel's opening animation (a scale) has finished.
    page.evaluate("""() => Promise.all(document.querySelector('tocsin-bell').shadowRoot
      .getAnimations().map(a => a.finished))""")
    row = box(page, "tocsin-bell li.row")
    scroller = box(page, "tocsin-bell .scroll")
    assert scroller["y"] + scroller["height"] - (row["y"] + row["height"]) <= 2
    # The unread tint covers the whole row, under the action buttons too.
    bg = page.evaluate("""() => {
      const root = document.querySelector('tocsin-bell').shadowRoot;
      const row = root.querySelector('li.row');
      const actions = root.querySelector('li.row .actions');
      const tint = (el) => { for (; el; el = el.parentElement) {
        const c = getComputedStyle(el).backgroundColor;
        if (c !== 'rgba(0, 0, 0, 0)') return c; } return null; };
      return [tint(row.querySelector('.open')), tint(actions)];
    }""")
    assert bg[0] == bg[1]
    h.publish(user, "With a source", source="ci")
    page.locator("tocsin-bell select[aria-label='Filter by source']").wait_for()


def test_a_refused_token_says_signed_out(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ctx = h.context()
    page = ctx.new_page()
    bad = mint(user, secret="not-the-servers-secret-0123456789abcdef")
    page.goto(f"{h.srv.url}/e2e/page.html?token={bad}")
    page.wait_for_function("() => window.tocsinClient && "
                           "tocsinClient.connectionStatus === 'unauthorized'")
    banner = page.locator("tocsin-status .banner")
    banner.wait_for()
    assert banner.inner_text().startswith("Signed out")
    assert page.locator("tocsin-status").get_attribute("state") == "unauthorized"


def test_a_refused_token_asks_the_token_function_again(h: Harness) -> None:
    """The token function hears ``refused: true`` and its fresh token connects."""
    need_chromium()
    user = fresh_user()
    good = h.srv.token(user)
    bad = mint(user, secret="not-the-servers-secret-0123456789abcdef")
    page = h.open(h.context(), user, wait=False)
    wait_connected(page)
    calls = page.evaluate(f"""async () => {{
      tocsinClient.disconnect();
      const {{ connect }} = await import("/static/tocsin/tocsin.js");
      window.__calls = [];
      let current = "{bad}";  // as a server restarted with another secret would see it
      window.tocsinClient = connect({{ backoffBase: 100, shareConnection: false,
        token: (req) => {{ window.__calls.push(!!(req && req.refused));
                           if (req && req.refused) current = "{good}";  // mint a new one
                           return current; }} }});
      return true;
    }}""")
    assert calls
    wait_connected(page)
    assert page.evaluate("window.__calls").count(True) >= 1
