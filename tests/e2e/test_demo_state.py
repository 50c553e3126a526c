"""What the demo page says agrees with what the server holds (issue 22): incidents
acknowledged before the page opened, do-not-disturb in the header and in Preferences,
and the quiet-period scenario's claims."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.demo_server import DemoProcess
from tests.e2e.test_demo import open_as
from tests.support.services import need_chromium
from tests.support.wait import wait_until

pytestmark = pytest.mark.browser


def token(demo: DemoProcess, user: str) -> str:
    r = httpx.get(f"{demo.url}/demo/api/token", params={"user": user}, timeout=10)
    r.raise_for_status()
    return str(r.json()["token"])


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

    copy = wait_until(bobs_copy, 15, "the incident escalated to Bob")  # escalated to Bob after 5 s
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


def set_preferences(demo: DemoProcess, user: str, **changes: Any) -> None:
    auth = {"Authorization": f"Bearer {token(demo, user)}"}
    prefs = httpx.get(f"{demo.url}/api/preferences", headers=auth, timeout=10).json()
    prefs.pop("defaults", None)
    r = httpx.put(f"{demo.url}/api/preferences", headers=auth, json={**prefs, **changes},
                  timeout=10)
    assert r.status_code == 200, r.text


def test_the_quiet_period_says_what_the_server_decided(browser: Any, demo: DemoProcess) -> None:
    """Item 13: a like made silent by a per-type preference is not counted as held for
    the summary (before: "3 arrived silently" and a digest of 2); with quiet hours
    covering the end of the DND, no "Quiet period over" claim (before: it came, and no
    summary)."""
    need_chromium()
    set_preferences(demo, "bob", types={"like": {"channels": ["inbox"], "minPriority": "low"}})
    ctx, page = open_as(browser, demo, "bob")
    try:
        page.goto(f"{demo.url}/?user=bob&quietSeconds=3")
        page.wait_for_function("() => window.tocsinClient?.state.connectionStatus === 'connected'")
        page.locator("#quiet").click()
        out = page.locator("#quiet-result")
        out.filter(has_text="Do not disturb for 3 s").wait_for()
        said = out.inner_text()
        assert "2 notifications held silently for one summary" in said, said
        assert "1 silent by your preferences" in said, said
        out.filter(has_text="Quiet period over: one summary toast for 2 notifications").wait_for()
        digest = page.locator("tocsin-toasts .toast",
                              has_text="2 notifications while you were away")
        digest.wait_for()
        assert page.errors == []
    finally:
        ctx.close()
    now = time.gmtime()
    start = f"{(now.tm_hour - 1) % 24:02d}:00"
    end = f"{(now.tm_hour + 2) % 24:02d}:00"
    set_preferences(demo, "carol", quietHours={"timezone": "UTC", "start": start, "end": end})
    ctx, page = open_as(browser, demo, "carol")
    try:
        page.goto(f"{demo.url}/?user=carol&quietSeconds=2")
        page.wait_for_function("() => window.tocsinClient?.state.connectionStatus === 'connected'")
        page.locator("#quiet").click()
        out = page.locator("#quiet-result")
        out.filter(has_text="Your quiet hours go on until").wait_for()
        page.wait_for_timeout(3500)  # past the DND's end
        assert "Quiet period over" not in out.inner_text()
        assert page.locator("tocsin-toasts .toast.digest").count() == 0
        assert page.errors == []
    finally:
        ctx.close()
