"""The demo's "Webhooks" panel: a real ``tocsin demo`` process whose app backend (a
route of its own) is subscribed to every event webhook and lists the signed events it
verified; its chat room lists what its Slack-format target of the webhook channel
received (escalation steps post to it)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.demo_server import DemoProcess
from tests.e2e.test_demo import open_as
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser


def hooks(demo: DemoProcess) -> dict[str, Any]:
    r = httpx.get(f"{demo.url}/demo/api/hooks", timeout=5)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def read_event(demo: DemoProcess, nid: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """The one signed ``notification.read`` of ``nid`` the app backend received."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [e for e in hooks(demo)["backend"]
                 if e["type"] == "notification.read" and e["data"]["notification"] == nid]
        if found or time.monotonic() > deadline:
            (event,) = found
            return event
        time.sleep(0.2)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900},
                                      {"width": 390, "height": 844}], ids=["wide", "phone"])
def test_the_app_backend_lists_a_verified_read_and_the_chat_room_shows(
        browser: Any, demo: DemoProcess, viewport: dict[str, int]) -> None:
    need_chromium()
    ctx, alice = open_as(browser, demo, "alice")
    try:
        alice.set_viewport_size(viewport)
        alice.wait_for_function("() => window.tocsinClient && tocsinClient.state.loaded")
        panel = alice.locator("section.hooks")
        assert panel.locator("h2").inner_text() == "Webhooks"
        r = httpx.post(f"{demo.url}/demo/api/send", timeout=5, json={
            "to": ["bob"], "from": "alice", "type": "message", "title": "Lunch?",
            "priority": "medium"})
        assert r.status_code == 201, r.text
        nid = r.json()["ids"]["bob"]
        token = httpx.get(f"{demo.url}/demo/api/token", params={"user": "bob"},
                          timeout=5).json()["token"]
        r = httpx.patch(f"{demo.url}/api/notifications/{nid}", json={"read": True},
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 200, r.text
        # this read's own event (the panel keeps the other viewport's "read by bob"
        # too): found by its notification in the backend's list, then by its id on screen
        event = read_event(demo, nid)
        assert event["verified"] is True and event["id"].startswith("msg_")
        item = panel.locator("#hooks-backend li", has_text=event["id"])
        item.wait_for(timeout=30_000)
        assert "notification.read by bob" in item.inner_text()
        assert "signature verified" in item.inner_text()

        # the webhook channel is installed: paging the on-call posts to the chat room
        assert hooks(demo)["chatTarget"] is True
        r = httpx.post(f"{demo.url}/demo/api/incident", timeout=5,
                       json={"onCall": "carol", "waitSeconds": 60})
        assert r.status_code == 201, r.text
        panel.locator("#hooks-chat li", has_text="checkout").wait_for(timeout=30_000)
        box = panel.bounding_box()
        assert box is not None and box["width"] <= viewport["width"]
        assert alice.errors == []
    finally:
        ctx.close()
