"""Many tabs, one connection: leader election, shared state, failover without loss."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Harness, fresh_user, state, wait_connected
from tests.support.server import start_server
from tests.support.services import need_chromium
from tests.support.wait import wait_on_page

pytestmark = pytest.mark.browser


@pytest.fixture
def solo(tmp_path: Path, browser: Any) -> Iterator[Harness]:
    """A server of its own, so its connection count is this test's alone."""
    need_chromium()
    srv = start_server(tmp_path)
    harness = Harness(srv, browser)
    yield harness
    harness.close()
    srv.stop()


def roles(pages: list[Any]) -> list[str]:
    return [str(state(p, "s.role")) for p in pages]


def test_mark_all_read_in_one_tab_updates_the_other(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ctx = h.context()
    a = h.open(ctx, user)
    b = h.open(ctx, user)
    for i in range(3):
        h.publish(user, f"note {i}")
    for p in (a, b):
        p.wait_for_function("() => tocsinClient.state.unreadCount === 3")
        assert p.locator("tocsin-bell .badge").inner_text() == "3"

    a.locator("tocsin-bell button.bell").click()
    a.locator("tocsin-bell button.all").click()
    b.wait_for_function("() => tocsinClient.state.unreadCount === 0", timeout=2000)
    assert b.locator("tocsin-bell .badge").is_hidden()
    b.locator("tocsin-bell button.bell").click()
    assert b.locator("tocsin-bell li.row.unread").count() == 0
    assert b.locator("tocsin-bell li.row.read").count() == 3

    # And the other way round, one item: marked unread in b shows in a at once.
    b.locator("tocsin-bell li.row", has_text="note 1").locator("button.toggle").click()
    a.wait_for_function("() => tocsinClient.state.unreadCount === 1", timeout=2000)
    assert a.locator("tocsin-bell li.row.unread .title").all_inner_texts() == ["note 1"]
    # A toast for a notification read in another tab goes away. (Toasts stay hidden
    # while the page's own center is open, so close it first.)
    a.locator("tocsin-bell button.bell").click()
    assert a.locator("tocsin-bell button.bell").get_attribute("aria-expanded") == "false"
    h.publish(user, "read me elsewhere", priority="high")
    a.locator("tocsin-toasts .toast", has_text="read me elsewhere").wait_for()
    b.wait_for_function("() => tocsinClient.state.unreadCount === 2")
    nid = b.evaluate(
        "tocsinClient.state.notifications.find(n => n.title === 'read me elsewhere').id")
    b.evaluate(f"tocsinClient.markRead('{nid}')")
    a.locator("tocsin-toasts .toast", has_text="read me elsewhere").wait_for(state="detached",
                                                                           timeout=2000)
    assert h.unread(user) == 1


def test_three_tabs_one_connection_and_failover_loses_nothing(solo: Harness) -> None:
    need_chromium()
    h = solo
    user = fresh_user()
    ctx = h.context()
    pages = [h.open(ctx, user) for _ in range(3)]
    wait_on_page(pages[0], lambda: sorted(roles(pages)) == ["follower", "follower", "leader"],
                 within=5, what="one leader and two followers")
    # Exactly one stream on the server, however many tabs.
    wait_on_page(pages[0], lambda: h.connections() == 1, within=5, what="one connection")
    time.sleep(0.5)
    assert h.connections() == 1

    h.publish(user, "before failover")
    for p in pages:
        p.wait_for_function("() => tocsinClient.state.unreadCount === 1")

    leader = next(p for p in pages if state(p, "s.role") == "leader")
    rest = [p for p in pages if p is not leader]
    # Hold the new leader's stream request, so that what is published next certainly
    # happens while no tab is connected and must come back by resuming from the id.
    held: list[Any] = []
    ctx.route(lambda url: "/api/notifications/stream" in url, lambda route: held.append(route))
    leader.close()
    closed_at = time.monotonic()
    wait_on_page(rest[0], lambda: "leader" in roles(rest), within=5, what="a new leader")
    assert time.monotonic() - closed_at < 2.0
    wait_on_page(rest[0], lambda: bool(held) or not roles(rest), within=5,
                 what="the new leader's stream request")
    assert len(held) == 1 and "lastEventId=" in held[0].request.url
    for i in range(5):
        h.publish(user, f"during failover {i}")
    held[0].continue_()
    ctx.unroute_all()
    for p in rest:
        wait_connected(p)
        p.wait_for_function("() => tocsinClient.state.unreadCount === 6", timeout=5000)
    h.publish(user, "after failover")
    expected = ["after failover", *[f"during failover {i}" for i in range(4, -1, -1)],
                "before failover"]
    for p in rest:
        p.wait_for_function("() => tocsinClient.state.unreadCount === 7", timeout=3000)
        titles = state(p, "s.notifications.map(n => n.title)")
        assert titles == expected  # nothing lost, nothing twice
    wait_on_page(rest[0], lambda: h.connections() == 1, within=5, what="one connection")
    time.sleep(0.5)
    assert h.connections() == 1
    for p in rest:
        assert p.errors == []


def test_disconnect_hands_the_connection_to_another_tab(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ctx = h.context()
    a = h.open(ctx, user)
    b = h.open(ctx, user)
    wait_on_page(a, lambda: sorted(roles([a, b])) == ["follower", "leader"], within=5,
                 what="a leader and a follower")
    leader, other = (a, b) if state(a, "s.role") == "leader" else (b, a)
    leader.evaluate("tocsinClient.disconnect()")
    wait_on_page(other, lambda: state(other, "s.role") == "leader", within=2,
                 what="the other tab to lead")
    wait_connected(other)
    assert state(leader, "s.connectionStatus") == "disconnected"
    h.publish(user, "after disconnect")
    other.wait_for_function("() => tocsinClient.state.unreadCount === 1")
    leader.wait_for_timeout(300)
    assert state(leader, "s.unreadCount") == 0  # a disconnected client hears nothing
