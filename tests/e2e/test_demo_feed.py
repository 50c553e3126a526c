"""Issue 9, item 8: the demo's activity feed reports only what the server accepted. An
action the server refuses is undone and posts nothing; an action taken offline has its
feed post visibly queued, and posted exactly once when the connection is back."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.demo_server import DemoProcess
from tests.e2e.test_demo import feed_titles, open_as
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser


def send(demo: DemoProcess, to: str, title: str) -> str:
    r = httpx.post(demo.url + "/demo/api/send",
                   json={"to": [to], "from": "bob", "type": "message", "title": title,
                         "priority": "low"})
    assert r.status_code == 201, r.text
    ids: dict[str, str] = r.json()["ids"]
    return ids[to]


def wait_notification(page: Any, nid: str) -> None:
    page.wait_for_function("id => tocsinClient.notifications.some(n => n.id === id)", arg=nid)


def row(page: Any, nid: str) -> Any:
    return page.locator(f"tocsin-bell li.row[data-id='{nid}']")


def test_a_refused_action_posts_nothing_and_is_undone(browser: Any, demo: DemoProcess) -> None:
    need_chromium()
    cctx, carol = open_as(browser, demo, "carol")
    bctx, bob = open_as(browser, demo, "bob")
    try:
        tag = uuid.uuid4().hex[:6]
        refused_title, ok_title = f"Refused {tag}", f"Accepted {tag}"
        refused = send(demo, "carol", refused_title)
        ok = send(demo, "carol", ok_title)
        wait_notification(carol, refused)
        wait_notification(carol, ok)

        # The server refuses read and dismiss for this one notification.
        def refuse(route: Any) -> None:
            if route.request.method in ("PATCH", "DELETE"):
                route.fulfill(status=409, content_type="application/json",
                              body='{"error": {"code": "conflict", "message": "refused"}}')
            else:
                route.continue_()

        carol.route(f"**/api/notifications/{refused}", refuse)
        carol.locator("tocsin-bell button.bell").click()
        row(carol, refused).locator("button.toggle").click()
        # Undone, and said so: the row is unread again and the center shows why.
        carol.locator("tocsin-bell .error", has_text="undone").wait_for()
        row(carol, refused).and_(carol.locator("li.unread")).wait_for()
        row(carol, refused).locator("button.dismiss").click()
        carol.locator("tocsin-bell .error", has_text="dismiss").wait_for()
        row(carol, refused).wait_for()  # back in the list
        assert carol.evaluate("id => tocsinClient.notifications.find(n => n.id === id).read",
                              refused) is False

        # An accepted action afterwards is reported: once it shows in both feeds, the
        # refused ones (which came first) would have too.
        row(carol, ok).locator("button.toggle").click()
        line = f"Carol read “{ok_title}”"
        for p in (carol, bob):
            p.locator("#feed li .title", has_text=line).wait_for()
        for p in (carol, bob):
            titles = feed_titles(p)
            assert not [t for t in titles if refused_title in t], titles
        assert carol.locator("#feed-pending").is_hidden()
        assert carol.errors == [] and bob.errors == []
    finally:
        cctx.close()
        bctx.close()


def test_offline_feed_posts_are_queued_visibly_and_posted_once(browser: Any,
                                                                demo: DemoProcess) -> None:
    need_chromium()
    cctx, carol = open_as(browser, demo, "carol")
    bctx, bob = open_as(browser, demo, "bob")
    try:
        tag = uuid.uuid4().hex[:6]
        first, second = f"Offline one {tag}", f"Offline two {tag}"
        marker = f"Marker {tag}"
        ids = [send(demo, "carol", t) for t in (first, second, marker)]
        for nid in ids:
            wait_notification(carol, nid)
        pending = carol.locator("#feed-pending")
        assert pending.is_hidden()

        cctx.set_offline(True)
        carol.locator("#feed-state", has_text="offline").wait_for()
        carol.locator("tocsin-bell button.bell").click()
        row(carol, ids[0]).locator("button.toggle").click()
        pending.filter(has_text="1 update of yours will be posted").wait_for()
        row(carol, ids[1]).locator("button.dismiss").click()
        pending.filter(has_text="2 updates of yours will be posted").wait_for()
        assert pending.get_attribute("role") == "status"
        time.sleep(0.5)
        assert not [t for t in feed_titles(bob) if tag in t]

        cctx.set_offline(False)
        lines = [f"Carol read “{first}”", f"Carol dismissed “{second}”"]
        for p in (carol, bob):
            for text in lines:
                p.locator("#feed li .title", has_text=text).wait_for()
        pending.wait_for(state="hidden")
        # Carol's own updates, posted once she was back, are not news she missed.
        assert carol.locator("#feed li.replayed").count() == 0
        assert carol.locator("#feed-replay").is_hidden()
        # Exactly once: a later action's post arrives, and each line is still there once.
        row(carol, ids[2]).locator("button.toggle").click()
        for p in (carol, bob):
            p.locator("#feed li .title", has_text=f"Carol read “{marker}”").wait_for()
            titles = feed_titles(p)
            assert [titles.count(t) for t in lines] == [1, 1], titles
            # In the order they were done (the feed is newest first).
            assert titles.index(lines[1]) < titles.index(lines[0])
        assert carol.errors == [] and bob.errors == []
    finally:
        cctx.close()
        bctx.close()
