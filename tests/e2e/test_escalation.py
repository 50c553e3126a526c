"""Acknowledge and the escalation countdown in the browser (docs/escalation.md): the
toast and the center offer "Acknowledge" (by keyboard too), the ack reaches the server
and every recipient's page, the countdown ticks, and the demo's incident scenario stops
escalating once acknowledged. Real servers, real clock (short waits)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx

from tests.e2e.conftest import SPY_JS, Harness, state, wait_connected
from tests.e2e.demo_server import DemoProcess
from tests.support.server import ServerProcess

COUNTDOWN = re.compile(r"Escalates to the next on-call in (\d+):(\d\d)")


def users(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"{c}-{tag}" for c in "abcdefgh"[:n]]


def open_incident(srv: ServerProcess, steps: list[list[str]], wait: int,
                  title: str = "DB down") -> tuple[str, dict[str, str]]:
    name = "p-" + uuid.uuid4().hex[:8]
    with srv.publisher() as pub:
        # Skipping by presence is not tested here (tests/escalation): a headless page
        # may well report idle, so no step is skipped.
        r = pub.put(f"/api/escalation-policies/{name}", json={
            "steps": [{"targets": t, "waitSeconds": wait, "skipIfNobodyActive": False}
                      for t in steps]})
        assert r.status_code == 201, r.text
        r = pub.post("/api/notifications", json={
            "escalation": name, "type": "alert", "title": title, "priority": "urgent"})
        assert r.status_code == 201, r.text
        return r.json()["incident"], r.json()["ids"]


def incident(srv: ServerProcess, id: str) -> dict[str, Any]:
    with srv.publisher() as pub:
        r = pub.get(f"/api/incidents/{id}")
        assert r.status_code == 200, r.text
        return dict(r.json())


def shadow_focus(page: Any, tag: str) -> str:
    """The class of the focused element inside ``tag``'s shadow root."""
    return str(page.evaluate(
        f"() => document.querySelector('{tag}').shadowRoot.activeElement?.className ?? ''"))


def countdown_seconds(text: str) -> int:
    m = COUNTDOWN.search(text)
    assert m, text
    return int(m.group(1)) * 60 + int(m.group(2))


def test_acknowledge_from_toast_and_center_by_keyboard_reaches_everyone(h: Harness) -> None:
    a, b, c = users(3)
    pa = h.open(h.context(), a)
    pb = h.open(h.context(), b)
    inc, ids = open_incident(h.srv, [[a, b], [c]], wait=300)
    assert set(ids) == {a, b}

    # The toast: Acknowledge and the countdown; reached with Tab from the toast, Enter.
    toast = pa.locator("tocsin-toasts .toast.incident")
    toast.locator(".ack").wait_for()
    assert COUNTDOWN.search(toast.locator(".countdown").inner_text())
    toast.locator(".open").focus()
    pa.keyboard.press("Tab")  # the close button
    pa.keyboard.press("Tab")
    assert "ack" in shadow_focus(pa, "tocsin-toasts")
    pa.keyboard.press("Enter")
    # Optimistic: at once, before the server answers; the countdown stops.
    toast.locator(".acked", has_text="Acknowledged by you").wait_for()
    assert toast.locator(".countdown").count() == 0 and toast.locator(".ack").count() == 0
    assert "open" in shadow_focus(pa, "tocsin-toasts")  # focus stays in the toast

    # The server has it once the optimistic action settled (the UI did not wait).
    pa.wait_for_function("() => tocsinClient.state.pendingActions === 0")
    got = incident(h.srv, inc)
    assert got["state"] == "acked" and got["ackedBy"] == a, got
    assert not state(pa, "s.notifications[0].read")  # acknowledging is not reading

    # The other recipient's page: the toast and the center say who acknowledged.
    tb = pb.locator("tocsin-toasts .toast.incident")
    tb.locator(".acked", has_text=f"Acknowledged by {a}").wait_for()
    assert tb.locator(".ack").count() == 0
    pb.locator("tocsin-bell .bell").click()
    row = pb.locator(f'tocsin-bell li.row[data-id="{ids[b]}"]')
    row.locator(".acked", has_text=f"Acknowledged by {a}").wait_for()
    assert row.locator(".ack").count() == 0
    pb.keyboard.press("Escape")

    # The center, by keyboard: Enter on the bell focuses the newest item, Tab reaches
    # its Acknowledge, Enter acknowledges.
    inc2, ids2 = open_incident(h.srv, [[a, b], [c]], wait=300, title="Disk full")
    pb.wait_for_function(f"() => tocsinClient.state.notifications.some(n => n.id === '{ids2[b]}')")
    pb.locator("tocsin-bell .bell").focus()
    pb.keyboard.press("Enter")
    row2 = pb.locator(f'tocsin-bell li.row[data-id="{ids2[b]}"]')
    row2.locator(".ack").wait_for()
    assert "open" in shadow_focus(pb, "tocsin-bell")
    pb.keyboard.press("Tab")
    assert "ack" in shadow_focus(pb, "tocsin-bell")
    pb.keyboard.press("Enter")
    row2.locator(".acked", has_text="Acknowledged by you").wait_for()
    assert shadow_focus(pb, "tocsin-bell")  # focus stayed inside the center
    ta2 = pa.locator(f'tocsin-toasts .toast[data-id="{ids2[a]}"]')
    ta2.locator(".acked", has_text=f"Acknowledged by {b}").wait_for()
    got = incident(h.srv, inc2)
    assert got["state"] == "acked" and got["ackedBy"] == b, got
    assert pa.errors == [] and pb.errors == []  # type: ignore[attr-defined]


def test_countdown_ticks_alone_and_stops_with_its_toast(h: Harness) -> None:
    a, b = users(2)
    page = h.open(h.context(), a, **{"t.duration-medium": "600000"})
    h.publish(a, "An ordinary notification")
    page.locator("tocsin-toasts .toast.medium").wait_for()
    page.evaluate("() => { document.querySelector('tocsin-toasts').shadowRoot"
                  ".querySelector('.toast.medium').__mark = 1; }")
    open_incident(h.srv, [[a], [b]], wait=90)
    cd = page.locator("tocsin-toasts .toast.incident .countdown")
    cd.wait_for()
    assert cd.get_attribute("role") == "timer"
    first = countdown_seconds(cd.inner_text())
    assert 80 <= first <= 90, first
    page.wait_for_timeout(2200)
    second = countdown_seconds(cd.inner_text())
    assert first - 3 <= second <= first - 1, (first, second)
    # The other toast was not re-created by the ticks.
    assert page.evaluate("() => document.querySelector('tocsin-toasts').shadowRoot"
                         ".querySelector('.toast.medium').__mark") == 1
    ticks = "() => document.querySelector('tocsin-toasts').ticks.size"
    assert page.evaluate(ticks) == 1
    page.locator("tocsin-toasts .toast.incident .close").click()
    page.wait_for_function(f"() => ({ticks})() === 0")


def test_a_refused_ack_is_undone_visibly(h: Harness) -> None:
    a, b = users(2)
    page = h.open(h.context(), a)
    inc, _ = open_incident(h.srv, [[a], [b]], wait=300)
    toast = page.locator("tocsin-toasts .toast.incident")
    toast.locator(".ack").wait_for()

    held: list[Any] = []
    page.route("**/api/notifications/*/ack", lambda route: held.append(route))  # answered below
    toast.locator(".ack").click()
    toast.locator(".acked", has_text="Acknowledged by you").wait_for()
    assert len(held) == 1
    held[0].fulfill(status=404, content_type="application/json", body=json.dumps(
        {"error": {"code": "not_found", "message": "No such notification in an incident."}}))
    toast.locator(".ack").wait_for()  # undone
    page.locator("tocsin-toasts .toast.local", has_text="Could not acknowledge").wait_for()
    assert incident(h.srv, inc)["state"] == "open"


# ---- the demo's incident scenario ---------------------------------------------------

def test_demo_incident_countdown_acknowledge_stops_escalation(browser: Any,
                                                              demo: DemoProcess) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        ctx.add_init_script(SPY_JS)
        ctx.set_default_timeout(10_000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{demo.url}/?user=alice")
        wait_connected(page)

        page.select_option("#inc-wait", "10")
        page.get_by_role("button", name="Start an incident").click()
        page.locator("#inc-result", has_text="escalates to Bob").wait_for()
        toast = page.locator("tocsin-toasts .toast.incident")
        cd = toast.locator(".countdown")
        cd.wait_for()
        first = countdown_seconds(cd.inner_text())
        page.wait_for_function(
            "(t) => { const el = document.querySelector('tocsin-toasts').shadowRoot"
            ".querySelector('.toast.incident .countdown');"
            " return el && el.textContent !== t; }", arg=cd.inner_text())
        assert countdown_seconds(cd.inner_text()) < first <= 10
        toast.get_by_role("button", name=re.compile(r"^Acknowledge")).click()
        toast.locator(".acked", has_text="Acknowledged by you").wait_for()

        n = state(page, "s.notifications.find(n => n.data && n.data.incident)")
        inc_id, next_at = n["data"]["incident"], n["data"]["escalation"]["nextAt"]
        # Past the moment the next step was due (and a timer poll), nothing escalated.
        time.sleep(max(0.0, next_at / 1000 - time.time()) + 2.5)
        creds = json.loads((demo.log_path.parent / "demo.db.dev-credentials.json").read_text())
        with httpx.Client(base_url=demo.url, timeout=10,
                          headers={"Authorization": f"Bearer {creds['apiKey']}"}) as pub:
            got = pub.get(f"/api/incidents/{inc_id}").json()
        assert got["state"] == "acked" and got["ackedBy"] == "alice", got
        assert [e["user"] for e in got["timeline"] if e["kind"] == "notified"] == ["alice"]
        token = httpx.get(f"{demo.url}/demo/api/token?user=bob").json()["token"]
        bob = httpx.get(f"{demo.url}/api/notifications?limit=50",
                        headers={"Authorization": f"Bearer {token}"}).json()["items"]
        assert not [x for x in bob if (x.get("data") or {}).get("incident") == inc_id]
        assert page.locator("tocsin-toasts .toast.incident").count() == 1
        assert page.locator("#feed li .title", has_text="Alice acknowledged").count() == 1
        assert errors == []
    finally:
        ctx.close()
