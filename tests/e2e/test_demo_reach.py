"""The demo's "Sent beyond the tab": a real ``tocsin demo`` process with its own local
push service (``/demo/push-service``) and SMTP server; the page's button gives the demo
users an email address and a simulated closed-tab device, and the panel lists what the
push service (decrypted) and the SMTP server received."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.demo_server import DemoProcess
from tests.e2e.test_demo import open_as
from tests.support.services import need_chromium
from tests.support.wait import stays

pytestmark = pytest.mark.browser


def sent(demo: DemoProcess) -> dict[str, Any]:
    r = httpx.get(f"{demo.url}/demo/api/sent", timeout=5)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_sent_beyond_the_tab(browser: Any, demo: DemoProcess) -> None:
    need_chromium()
    ctx, alice = open_as(browser, demo, "alice")
    try:
        alice.goto(f"{demo.url}/?user=alice&emailAfter=1")
        alice.wait_for_function("() => window.tocsinClient && tocsinClient.state.loaded")
        panel = alice.locator("section.reach")
        assert panel.locator("h2").inner_text() == "Sent beyond the tab"
        panel.locator("#sent-push li.empty").wait_for()
        assert sent(demo)["devices"] == []

        panel.locator("#reach-setup").click()
        panel.locator("#reach-result", has_text="bob@example.com").wait_for()
        s = sent(demo)
        assert sorted(d["user"] for d in s["devices"]) == ["alice", "bob", "carol"]
        assert s["smtp"] is True
        # Twice is harmless: still one device each.
        panel.locator("#reach-setup").click()
        panel.locator("#reach-result", has_text="Done").wait_for()
        assert len(sent(demo)["devices"]) == 3

        # Bob has no tab open: an urgent message from the playground is pushed to his
        # simulated device, and (type "message", unread after 1 s) emailed to him.
        title = "Deploy <b>failed</b>"
        r = httpx.post(f"{demo.url}/demo/api/send", timeout=5, json={
            "to": ["bob"], "from": "alice", "type": "message", "title": title,
            "body": "main is red", "priority": "urgent"})
        assert r.status_code == 201, r.text
        item = panel.locator("#sent-push li", has_text="Deploy")
        item.wait_for(timeout=30_000)
        assert item.locator(".what").inner_text() == title  # text, not markup
        assert "Bob's closed-tab device" in item.inner_text()
        assert "delivered" in item.inner_text() and "urgent" in item.inner_text()
        push = next(m for m in sent(demo)["push"] if m["title"] == title)
        assert push["user"] == "bob" and push["status"] == 201 and push["body"] == "main is red"
        assert "readToken" not in push

        mail = panel.locator("#sent-email li", has_text="bob@example.com")
        mail.wait_for(timeout=30_000)
        email = next(m for m in sent(demo)["email"] if "bob@example.com" in m["to"])
        assert "Deploy" in email["subject"]
        # Alice's page is open and visible: nothing was pushed to her own device.
        stays(lambda: all(m["user"] != "alice" for m in sent(demo)["push"]), 1,
              "no push to alice", interval=0.2, sleep=lambda s: alice.wait_for_timeout(s * 1000))
        assert alice.errors == []
    finally:
        ctx.close()


def test_only_the_push_service_takes_a_non_json_body(demo: DemoProcess) -> None:
    """/demo/push-service answers like a push service (an encrypted, non-JSON body; an
    unknown device is 404); every other path keeps the JSON-only rule."""
    need_chromium()
    octets = {"Content-Type": "application/octet-stream"}
    r = httpx.post(f"{demo.url}/demo/push-service/nope", content=b"x", headers=octets, timeout=5)
    assert r.status_code == 404
    r = httpx.post(f"{demo.url}/demo/api/reach", content=b"x", headers=octets, timeout=5)
    assert r.status_code == 415
