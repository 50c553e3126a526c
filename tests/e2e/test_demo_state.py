"""What the demo page says agrees with what the server holds (issue 22): incidents
acknowledged before the page opened, do-not-disturb in the header and in Preferences,
and the quiet-period scenario's claims."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.demo_server import DemoProcess, start_demo
from tests.e2e.test_demo import open_as
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    need_chromium()
    d = start_demo(tmp_path_factory.mktemp("demo-state"))
    yield d
    d.stop()


def token(demo: DemoProcess, user: str) -> str:
    r = httpx.get(f"{demo.url}/demo/api/token", params={"user": user}, timeout=10)
    r.raise_for_status()
    return str(r.json()["token"])


def wait_until(fn: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_an_incident_acknowledged_before_the_page_opened_shows_acknowledged(
        browser: Any, demo: DemoProcess) -> None:
    """Item 8: a page opened after the ack offers no Acknowledge and says who (by
    name) and when; the escalated copy says who holds it now, not "Alice is on call"."""
    need_chromium()
    r = httpx.post(f"{demo.url}/demo/api/incident", json={"onCall": "alice", "waitSeconds": 5},
                   timeout=10)
    assert r.status_code == 201, r.text
    incident = r.json()["incident"]
    bob = {"Authorization": f"Bearer {token(demo, 'bob')}"}

    def bobs_copy() -> Any:
        items = httpx.get(f"{demo.url}/api/notifications", headers=bob, timeout=10).json()["items"]
        return next((i for i in items if (i.get("data") or {}).get("incident") == incident), None)

    copy = wait_until(bobs_copy)  # escalated to Bob after 5 s
    assert "is on call" not in copy["body"]
    ctx, page = open_as(browser, demo, "bob")
    try:
        page.locator("tocsin-bell button.bell").click()
        row = page.locator(f'tocsin-bell li.row[data-id="{copy["id"]}"]')
        row.locator(".holder", has_text="Now with Bob").wait_for()
        r = httpx.post(f"{demo.url}/api/notifications/{copy['id']}/ack", headers=bob, timeout=10)
        assert r.status_code == 200, r.text
    finally:
        ctx.close()
    # Alice opens the demo after Bob acknowledged: her copy says so, by name.
    ctx, page = open_as(browser, demo, "alice")
    try:
        page.locator("tocsin-bell button.bell").click()
        row = page.locator("tocsin-bell li.row", has_text="checkout API").first
        acked = row.locator(".acked")
        acked.wait_for()
        assert acked.inner_text().startswith("Acknowledged by Bob at ")
        assert row.locator("button.ack").count() == 0
        assert page.errors == []
    finally:
        ctx.close()


def test_do_not_disturb_has_one_source_of_truth(browser: Any, demo: DemoProcess) -> None:
    """Item 3: DND set in Preferences shows in the header at once, in this page and in
    another browser (through the stream, not a 30 s poll); set in the other page's
    header, it shows in this page's open Preferences; both word the time alike."""
    need_chromium()
    actx, a = open_as(browser, demo, "alice")
    bctx, b = open_as(browser, demo, "alice")  # another browser: its own connection
    try:
        for p in (a, b):
            p.wait_for_function("() => tocsinClient.state.preferences !== null")
        a.locator("tocsin-bell button.bell").click()
        a.locator("tocsin-bell .prefs-btn").click()
        a.locator("tocsin-bell .prefs .dnd-hour").click()
        for p in (a, b):
            p.locator("#dnd[data-state=on]").wait_for(timeout=5000)
        panel = a.locator("tocsin-bell .prefs .dnd-state")
        panel.filter(has_text="On until").wait_for(timeout=5000)
        for p in (a, b):
            header = p.locator("#dnd-select option[value=on]").inner_text()
            assert header == panel.inner_text(), (header, panel.inner_text())
        before = panel.inner_text()
        # The other page's header: the open Preferences here follow at once.
        b.select_option("#dnd-select", "tomorrow")
        a.wait_for_function(
            "(was) => document.querySelector('tocsin-bell').shadowRoot"
            ".querySelector('.prefs .dnd-state')?.textContent !== was", arg=before, timeout=5000)
        after = panel.inner_text()
        assert after.startswith("On until ")
        assert a.locator("#dnd-select option[value=on]").inner_text() == after
        b.locator("#dnd-select option[value=on]", has_text=after).wait_for(
            state="attached", timeout=5000)
        # Off in the panel: both headers say Off.
        a.locator("tocsin-bell .prefs .dnd-off").click()
        for p in (a, b):
            p.locator("#dnd[data-state=off]").wait_for(timeout=5000)
        assert a.errors == [] and b.errors == []
    finally:
        actx.close()
        bctx.close()
