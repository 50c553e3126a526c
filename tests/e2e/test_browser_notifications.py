"""OS notifications (the Notifications API) for hidden tabs, and how permission is asked.

Headless Chromium never hides a tab, so the test flips ``document.visibilityState``
(see ``SPY_JS`` in conftest); the ``Notification`` constructor is observed by a
wrapper that still calls the real one.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Harness, fresh_user
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser


def test_hidden_tab_shows_os_notification_for_urgent_and_high_only(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ctx = h.context()
    ctx.grant_permissions(["notifications"], origin=h.srv.url)
    page = h.open(ctx, user)
    assert page.evaluate("Notification.permission") == "granted"

    # Visible tab: toasts only, no OS notification.
    h.publish(user, "visible high", priority="high")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
    page.wait_for_timeout(100)
    assert page.evaluate("window.__notes") == []

    page.evaluate("window.__setHidden(true)")
    ids = {}
    for prio in ("low", "medium", "high", "urgent"):
        ids[prio] = h.publish(user, f"hidden {prio}", priority=prio, body=f"{prio} body",
                              url=f"https://example.com/{prio}")[user]
    page.wait_for_function("() => tocsinClient.state.unreadCount === 5")
    page.wait_for_timeout(100)
    notes = page.evaluate("window.__notes")
    assert [n["title"] for n in notes] == ["hidden high", "hidden urgent"]
    high, urgent = notes
    assert high["tag"] == ids["high"] and urgent["tag"] == ids["urgent"]  # tag = id
    assert high["requireInteraction"] is False
    assert urgent["requireInteraction"] is True
    assert urgent["body"] == "urgent body"

    # A click focuses the tab, opens the url and marks the notification read.
    page.evaluate("window.__noteObjs[1].dispatchEvent(new Event('click'))")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 4")
    assert page.evaluate("window.__focused") >= 1
    assert page.evaluate("window.__opened") == ["https://example.com/urgent"]
    page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    assert h.unread(user) == 4

    # Back to visible: no more OS notifications.
    page.evaluate("window.__setHidden(false)")
    h.publish(user, "visible urgent", priority="urgent")
    page.wait_for_function("() => tocsinClient.state.unreadCount === 5")
    page.wait_for_timeout(100)
    assert len(page.evaluate("window.__notes")) == 2
    # Nothing ever asked for permission: it was granted by the context, not by a prompt.
    assert page.evaluate("window.__permissionRequests") == 0


def test_permission_asked_only_from_a_click_and_denial_remembered(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ctx = h.context()
    page = h.open(ctx, user)
    page.wait_for_timeout(300)
    assert page.evaluate("Notification.permission") == "default"
    assert page.evaluate("window.__permissionRequests") == 0  # never on page load

    page.locator("tocsin-bell button.bell").click()
    enable = page.locator("tocsin-bell .perm button.enable")
    assert enable.inner_text() == "Enable desktop notifications"
    page.evaluate("window.__permAnswer = 'denied'")  # the user says no in the prompt
    enable.click()
    assert page.evaluate("window.__permissionRequests") == 1
    denied = page.locator("tocsin-bell .perm .denied")
    denied.wait_for()
    assert "blocked" in denied.inner_text()
    assert enable.count() == 0

    # Remembered on the next visit, and still never asked on load.
    page.reload()
    page.wait_for_function("() => window.tocsinClient && tocsinClient.state.loaded")
    page.locator("tocsin-bell button.bell").click()
    assert page.locator("tocsin-bell .perm .denied").is_visible()
    assert page.locator("tocsin-bell .perm button.enable").count() == 0
    assert page.evaluate("window.__permissionRequests") == 0
