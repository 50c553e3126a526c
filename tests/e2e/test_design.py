"""Issue 22's layout and visual pass over the components, in a real browser against a
real server: the preferences section scrolling inside the center, solid toasts, priority
colours that meet WCAG AA in both schemes, phones, row actions, the permission prompt and
the small states."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Harness, fresh_user
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser

ROOT = "document.querySelector('tocsin-bell').shadowRoot"
TOASTS = "document.querySelector('tocsin-toasts').shadowRoot"
KEEP = {"t.duration-low": 60000, "t.duration-medium": 60000, "t.duration-high": 60000}
PHONE = {"viewport": {"width": 375, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def rect(page: Any, expr: str) -> dict[str, float]:
    r: dict[str, float] = page.evaluate(
        f"() => {{ const r = ({expr}).getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,"
        " width: r.width, height: r.height}; }")
    return r


def open_prefs_with_types(h: Harness, user: str, page: Any) -> None:
    # Enough types that the section is taller than the center.
    for i in range(5):
        h.publish(user, f"note {i}", type=f"type{i}")
    page.wait_for_function("() => tocsinClient.state.notifications.length === 5")
    page.locator("tocsin-bell .bell").click()
    # dispatched: Playwright's own scrolling-into-view before a click moves the page
    page.locator("tocsin-bell .prefs-btn").dispatch_event("click")
    page.wait_for_selector("tocsin-bell .email-digest")


def test_preferences_scroll_inside_the_center_with_the_header_kept(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(viewport={"width": 1280, "height": 720}), user)
    page.evaluate("document.body.style.minHeight = '4000px'")  # a page that can scroll
    open_prefs_with_types(h, user, page)
    panel = rect(page, f"{ROOT}.querySelector('.panel')")
    region = f"{ROOT}.querySelector('#tocsin-prefs')"
    assert page.evaluate(f"{region}.scrollHeight > {region}.clientHeight + 50")
    # The wheel over the section scrolls the section, never the page behind.
    box = rect(page, region)
    page.mouse.move(box["left"] + 40, box["top"] + 60)
    for _ in range(20):
        page.mouse.wheel(0, 400)
    page.wait_for_function(f"() => {region}.scrollTop + {region}.clientHeight >="
                           f" {region}.scrollHeight - 2")
    assert page.evaluate("scrollY") == 0
    # The last setting is reachable inside the panel; the header is still in view.
    digest = rect(page, f"{ROOT}.querySelector('.email-digest')")
    assert panel["top"] <= digest["top"] and digest["bottom"] <= panel["bottom"]
    close = rect(page, f"{ROOT}.querySelector('.close')")
    assert close["top"] >= panel["top"] and close["bottom"] <= panel["bottom"]
    # The wheel over the header does not scroll the page either.
    page.mouse.move(close["left"] - 60, close["top"] + 5)
    page.mouse.wheel(0, 400)
    page.wait_for_timeout(300)
    assert page.evaluate("scrollY") == 0
    # A clear way back to the list.
    page.locator("tocsin-bell .back").dispatch_event("click")
    assert page.locator("tocsin-bell .list").is_visible()
    assert page.locator("tocsin-bell #tocsin-prefs").is_hidden()
    # Preferences again, then close and reopen: the header is there, the list shows.
    page.locator("tocsin-bell .prefs-btn").dispatch_event("click")
    page.wait_for_selector("tocsin-bell .email-digest")
    page.evaluate(f"{region}.scrollTop = 400")
    page.keyboard.press("Escape")
    page.locator("tocsin-bell .bell").click()
    assert page.evaluate(f"{ROOT}.querySelector('.panel').scrollTop") == 0
    head = rect(page, f"{ROOT}.querySelector('.head')")
    assert head["top"] >= rect(page, f"{ROOT}.querySelector('.panel')")["top"]
    assert page.locator("tocsin-bell .list .open").first.is_visible()
    assert page.errors == []  # type: ignore[attr-defined]
