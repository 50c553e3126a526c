"""Offline, reconnect and replay: <tocsin-status>, the offline action queue, resume."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Harness, fresh_user, state, wait_connected
from tests.support.server import start_server
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser

OFFLINE = "You are offline — updates will arrive when you reconnect"


def test_offline_banner_then_replay_and_queued_actions(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ids = [h.publish(user, f"old {i}")[user] for i in range(2)]
    ctx = h.context()
    page = h.open(ctx, user)
    banner = page.locator("tocsin-status .banner")
    assert banner.is_hidden()
    assert page.locator("tocsin-status").get_attribute("state") == "ok"

    ctx.set_offline(True)
    banner.wait_for()
    assert banner.inner_text() == OFFLINE
    assert state(page, "s.connectionStatus") == "offline"

    # Published while the browser is offline: nothing arrives yet.
    h.publish(user, "missed 1", priority="high")
    h.publish(user, "missed 2")
    # Acting offline: the UI changes at once, the server not yet.
    page.locator("tocsin-bell button.bell").click()
    page.locator("tocsin-bell li.row", has_text="old 0").locator("button.toggle").click()
    page.locator("tocsin-bell li.row", has_text="old 1").locator("button.dismiss").click()
    assert page.locator("tocsin-bell .badge").is_hidden()
    assert page.locator("tocsin-bell li.row .title").all_inner_texts() == ["old 0"]
    page.wait_for_timeout(300)
    assert state(page, "s.pendingActions") == 2
    assert h.unread(user) == 4
    assert state(page, "s.notifications.length") == 1

    ctx.set_offline(False)
    t0 = time.monotonic()
    wait_connected(page)
    assert time.monotonic() - t0 < 1.5  # at once, not after a backoff
    banner.wait_for(state="hidden", timeout=1000)
    # Replayed: what was published meanwhile arrives, in order; queued actions are sent.
    page.wait_for_function("() => tocsinClient.state.notifications.length === 3")
    assert page.locator("tocsin-bell li.row .title").all_inner_texts() == \
        ["missed 2", "missed 1", "old 0"]
    page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    assert page.locator("tocsin-bell .badge").inner_text() == "2"
    assert h.unread(user) == 2
    with h.srv.subscriber(user) as sub:
        items = sub.get("/api/notifications").json()["items"]
        assert [i["id"] for i in items if i["title"].startswith("old")] == [ids[0]]
        assert next(i for i in items if i["id"] == ids[0])["read"] is True
    # The replayed ones were live arrivals: they toast.
    assert "missed 1" in page.locator("tocsin-toasts .toast .title").all_inner_texts()


def test_reconnects_with_backoff_and_resumes_after_server_restart(
    tmp_path: Path, browser: Any
) -> None:
    need_chromium()
    srv = start_server(tmp_path, extra=["--retry-ms", "300"])
    h = Harness(srv, browser)
    base = 200
    try:
        user = fresh_user()
        page = h.open(h.context(), user, backoffBase=base)
        h.publish(user, "before restart")
        page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
        port = srv.port
        page.evaluate("Math.random = () => 0")
        srv.stop()
        banner = page.locator("tocsin-status .banner")
        banner.wait_for(timeout=5000)
        assert banner.inner_text().startswith("Reconnecting…")  # then "Retry now"
        assert state(page, "s.connectionStatus") == "reconnecting"
        # EventSource's own retry first (the server's `retry:`), then our attempts: each
        # delay is drawn in [cap/2, cap] (jitter), the cap doubling: 2b, 4b, 8b, ... The
        # gaps measured here follow the 4b and 8b caps; with Math.random pinned to 0 they
        # are exactly half of that (without jitter they would be 4b and 8b).
        opened = len(page.evaluate("window.__esLog"))
        page.wait_for_function(f"() => window.__esLog.length >= {opened + 3}", timeout=8000)
        t = page.evaluate("window.__esLog")[opened:opened + 3]
        gap1, gap2 = t[1] - t[0], t[2] - t[1]
        assert 2 * base - 10 <= gap1 <= 2 * base + 150, (gap1, gap2)
        assert 4 * base - 10 <= gap2 <= 4 * base + 150, (gap1, gap2)
        # Acting while the server is away (the browser is online): the request fails on
        # the network, so the action waits in the queue; it is not undone.
        page.locator("tocsin-bell button.bell").click()
        page.locator("tocsin-bell li.row button.toggle").click()
        page.wait_for_timeout(300)
        assert state(page, "[s.unreadCount, s.pendingActions, s.error]") == [0, 1, None]
        srv = start_server(tmp_path, port=port, extra=["--retry-ms", "300"])
        h.srv = srv
        h.publish(user, "after restart")
        wait_connected(page, timeout=10_000)
        banner.wait_for(state="hidden")
        page.wait_for_function("() => tocsinClient.state.pendingActions === 0")
        page.wait_for_function("() => tocsinClient.state.unreadCount === 1")
        assert state(page, "s.notifications.map(n => [n.title, n.read])") == [
            ["after restart", False], ["before restart", True]]
        assert h.unread(user) == 1
    finally:
        h.close()
        srv.stop()


def test_reset_makes_the_client_refetch_state(tmp_path: Path, browser: Any) -> None:
    """A server that never issued the client's last event id (here: a new database behind
    the same address) answers ``reset``; the client drops its state and refetches it."""
    need_chromium()
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    srv = start_server(first, extra=["--retry-ms", "300"])
    h = Harness(srv, browser)
    try:
        user = fresh_user()
        ctx = h.context()
        page = h.open(ctx, user, backoffBase=150)
        follower = h.open(ctx, user, backoffBase=150)
        for i in range(3):
            h.publish(user, f"old server {i}")
        for p in (page, follower):
            p.wait_for_function("() => tocsinClient.state.unreadCount === 3")
        port = srv.port
        srv.stop()
        srv = start_server(second, port=port, extra=["--retry-ms", "300"])
        h.srv = srv
        h.publish(user, "new server")
        for p in (page, follower):  # the leader got the reset; the follower heard of it
            p.wait_for_function(
                "() => tocsinClient.state.notifications.map(n => n.title).join() === 'new server'",
                timeout=10_000)
            assert state(p, "s.unreadCount") == 1
        # And it is live again on the new server's ids.
        h.publish(user, "after reset")
        for p in (page, follower):
            p.wait_for_function("() => tocsinClient.state.unreadCount === 2", timeout=3000)
            assert state(p, "s.notifications.map(n => n.title)") == ["after reset", "new server"]
    finally:
        h.close()
        srv.stop()
