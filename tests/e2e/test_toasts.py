"""<tocsin-toasts>: priority queue, max visible, durations, pause, roles, reduced motion.

Durations are shortened with the component's attributes, so the tests take seconds.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Harness, fresh_user
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser

# Logs when each toast (by title) enters and leaves the stack, in page time (ms).
WATCH_JS = """() => {
  const root = document.querySelector("tocsin-toasts").shadowRoot;
  window.__toastLog = [];
  const seen = new Set();
  const scan = () => {
    const now = performance.now();
    const present = new Set([...root.querySelectorAll(".toast .title")].map((e) => e.textContent));
    for (const t of present) if (!seen.has(t)) { seen.add(t); __toastLog.push(["add", t, now]); }
    for (const t of [...seen]) {
      if (!present.has(t)) { seen.delete(t); __toastLog.push(["remove", t, now]); }
    }
  };
  new MutationObserver(scan).observe(root, { childList: true, subtree: true });
}"""

FAST = {"t.max-visible": 3, "t.duration-low": 500, "t.duration-medium": 1000,
        "t.duration-high": 1500, "t.duration-urgent": 0}


def visible_titles(page: Any) -> list[str]:
    return list(page.locator("tocsin-toasts .toast .title").all_inner_texts())


def log(page: Any) -> list[tuple[str, str, float]]:
    return [tuple(x) for x in page.evaluate("window.__toastLog")]


def test_toasts_in_priority_order_with_durations(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user, **FAST)
    page.evaluate(WATCH_JS)
    for prio in ("low", "medium", "high", "urgent"):
        h.publish(user, f"{prio} toast", priority=prio)
    page.wait_for_function("() => tocsinClient.state.toastQueue.length === 4")

    # Priority order, at most 3 visible, the rest counted.
    assert visible_titles(page) == ["urgent toast", "high toast", "medium toast"]
    assert page.locator("tocsin-toasts .more").inner_text() == "+1 more"
    # Screen readers: urgent in an alert region, the others in a status region.
    assert page.locator("tocsin-toasts [role=alert] .toast .title").all_inner_texts() == \
        ["urgent toast"]
    assert page.locator("tocsin-toasts [role=status] .toast .title").all_inner_texts() == \
        ["high toast", "medium toast"]

    # medium leaves after ~1 s, which lets low in; high leaves after ~1.5 s; urgent stays.
    page.wait_for_function(
        "() => !tocsinClient.state.toastQueue.some((t) => t.priority !== 'urgent')",
        timeout=6000)
    page.wait_for_timeout(600)
    events = log(page)
    added = {t: at for kind, t, at in events if kind == "add"}  # last add wins
    removed = {t: at for kind, t, at in events if kind == "remove"}
    first_add = {}
    for kind, t, at in events:
        if kind == "add":
            first_add.setdefault(t, at)
    assert "urgent toast" not in removed
    assert visible_titles(page) == ["urgent toast"]
    assert page.locator("tocsin-toasts .more").is_hidden()
    medium = removed["medium toast"] - first_add["medium toast"]
    high = removed["high toast"] - first_add["high toast"]
    assert 950 <= medium <= 1800, medium
    assert 1450 <= high <= 2300, high
    # low was pushed back by urgent, then shown again when medium left.
    assert added["low toast"] >= removed["medium toast"] - 50
    assert removed["low toast"] > added["low toast"]
    assert removed["low toast"] - first_add["low toast"] >= 500

    # Urgent stays until dismissed; dismissing a toast keeps the notification.
    page.locator("tocsin-toasts .toast.urgent button.close").click()
    assert visible_titles(page) == []
    assert page.evaluate("tocsinClient.state.unreadCount") == 4
    assert h.unread(user) == 4


def test_toast_timers_pause_on_hover_and_focus(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user, **{"t.duration-medium": 600})
    page.evaluate(WATCH_JS)

    h.publish(user, "hover me")
    toast = page.locator("tocsin-toasts .toast", has_text="hover me")
    toast.hover()
    page.wait_for_timeout(1200)  # twice the duration
    assert toast.is_visible()
    page.mouse.move(5, 400)
    toast.wait_for(state="detached", timeout=2000)

    h.publish(user, "focus me")
    toast = page.locator("tocsin-toasts .toast", has_text="focus me")
    toast.locator("button.close").focus()
    page.wait_for_timeout(1200)
    assert toast.is_visible()
    page.locator("#outside").focus()
    toast.wait_for(state="detached", timeout=2000)


def test_toast_click_opens_and_marks_read(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    page = h.open(h.context(), user, **{"t.duration-medium": 60000})
    h.publish(user, "click me", url="https://example.com/orders/1")
    page.locator("tocsin-toasts .toast button.open").click()
    page.wait_for_function("() => tocsinClient.state.unreadCount === 0")
    assert visible_titles(page) == []
    assert page.evaluate("window.__opened") == ["https://example.com/orders/1"]
    page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    assert h.unread(user) == 0


def test_toasts_respect_reduced_motion(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    anim = "() => getComputedStyle(document.querySelector('tocsin-toasts').shadowRoot" \
           ".querySelector('.toast')).animationName"
    normal = h.open(h.context(), user, **{"t.duration-medium": 60000})
    reduced = h.open(h.context(reduced_motion="reduce"), user, **{"t.duration-medium": 60000})
    h.publish(user, "animated?")
    for page in (normal, reduced):
        page.locator("tocsin-toasts .toast").wait_for()
    assert normal.evaluate(anim) != "none"
    assert reduced.evaluate(anim) == "none"
