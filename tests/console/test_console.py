"""Every view of the console (docs/console.md) in real Chromium against a real
``tocsin serve --console``: sign-in (the key in session storage only), the node's
figures, search leading to the trail, incidents, channel failures, presence; keyboard,
phone width and dark mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.channels.test_push import presence_of
from tests.console.conftest import Console, hold_stream
from tests.support.ids import uid
from tests.support.server import start_server
from tests.support.wait import wait_until
from tests.webhooks.receiver import Receiver
from tocsin.outbound.signing import new_secret


def summaries(c: Console, nid: str) -> list[str]:
    with c.srv.publisher() as pub:
        r = pub.get(f"/api/notifications/{nid}/trail")
    assert r.status_code == 200, r.text
    return [s["summary"] for r_ in r.json()["recipients"] for s in r_["steps"]]


def search(page: Any, by: str, value: str) -> None:
    page.click("#tab-search")
    page.select_option("#search-by", by)
    page.fill("#search-q", value)
    page.press("#search-q", "Enter")


def steps_of(page: Any, user: str) -> list[str]:
    sel = f'.recipient[data-user="{user}"] .step .what'
    page.wait_for_selector(sel)
    return [t.strip() for t in page.locator(sel).all_inner_texts()]


# -- the page, its routes, sign-in ------------------------------------------------------

def test_off_unless_enabled(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        assert httpx.get(srv.url + "/console").status_code == 404
        with srv.publisher() as pub:
            assert pub.get("/api/console/figures").status_code == 404
    finally:
        srv.stop()


def test_page_and_routes_are_guarded(console: Console) -> None:
    srv = console.srv
    r = httpx.get(srv.url + "/console")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    js = httpx.get(srv.url + "/console/assets/console.js")
    assert js.status_code == 200 and "content-security-policy" in js.headers
    routes = ["/api/console/figures", "/api/console/failures", "/api/console/incidents",
              "/api/console/presence"]
    with srv.subscriber("someone") as sub, srv.publisher() as pub:
        for route in routes:
            assert httpx.get(srv.url + route).status_code == 401
            assert sub.get(route).status_code == 403
            assert pub.get(route).status_code == 200, route
        for bad in ("/api/console/incidents?state=closed", "/api/console/incidents?limit=0",
                    "/api/console/failures?channel=%00", "/api/console/incidents?limit=x"):
            r = pub.get(bad)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field", bad


def test_sign_in_keeps_the_key_in_session_storage_only(console: Console) -> None:
    page = console.page(signed_in=False)
    page.fill("#api-key", "not-the-key-0123456789")
    page.click("#signin-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#signin-error').textContent !== ''")
    assert page.is_visible("#signin") and not page.is_visible("#app")
    page.fill("#api-key", console.srv.api_key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#app:not([hidden])")
    key = console.srv.api_key
    assert page.evaluate("sessionStorage.getItem('tocsin.console.apiKey')") == key
    assert page.evaluate("JSON.stringify(localStorage)") == "{}"
    assert page.context.cookies() == []
    assert key not in page.url
    # a reload keeps the tab signed in; another tab (a new session) is not
    page.reload()
    page.wait_for_selector("#app:not([hidden])")
    other = page.context.new_page()
    other.goto(console.srv.url + "/console")
    other.wait_for_selector("#signin:not([hidden])")
    # signing out forgets the key
    page.click("#signout")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.errors == [] or all("401" in e for e in page.errors)


# -- live node figures ------------------------------------------------------------------

def test_figures_plot_the_nodes_own_figures(console: Console) -> None:
    user = uid("f")
    with hold_stream(console.srv, user):
        for _ in range(3):
            console.publish([user])
        page = console.page()
        page.wait_for_selector("#chart-connections")
        page.wait_for_function(
            "() => Number(document.querySelector('#chart-connections [data-series=SSE] dd')"
            "?.textContent) >= 1", timeout=15_000)
        states = page.locator(".state").all_inner_texts()
        assert any("Broker: ok" in s for s in states), states
        assert any("Database: ok" in s for s in states), states
        for chart in ("#chart-rates", "#chart-trouble"):
            assert page.is_visible(chart)
        names = page.locator("#chart-rates dt").all_inner_texts()
        assert [n.strip() for n in names] == ["Publishes", "Notifications", "Deliveries"]
        assert page.locator("#chart-connections polyline").count() == 3
    with console.srv.publisher() as pub:
        body = pub.get("/api/console/figures").json()
    assert body["intervalMs"] == 2000 and body["samples"]
    assert sum(s["publishesPerSecond"] for s in body["samples"]) > 0
    assert page.errors == []


# -- search and the trail ---------------------------------------------------------------

def test_trail_shows_quiet_hours_visible_tab_and_read_first(console: Console) -> None:
    c, srv = console, console.srv
    quiet, pushed, mailed = uid("q"), uid("p"), uid("m")
    c.prefs(quiet, {"quietHours": {"timezone": "UTC", "start": "00:00", "end": "23:59"}})
    quiet_id = c.publish([quiet], priority="medium")["ids"][quiet]

    dev = c.push.device(pushed)
    with srv.subscriber(pushed) as sub:
        assert sub.post("/api/push-subscriptions", json=dev).status_code == 201
    with hold_stream(srv, pushed):
        with srv.subscriber(pushed) as sub:
            assert sub.put("/api/presence", json={"state": "active"}).status_code == 200
        wait_until(lambda: presence_of(srv, pushed) == "active", 5)
        pushed_id = c.publish([pushed], priority="high")["ids"][pushed]
        wait_until(lambda: "push suppressed: tab visible" in summaries(c, pushed_id), 10)

    with srv.publisher() as pub:
        assert pub.put(f"/api/users/{mailed}",
                       json={"email": f"{mailed}@example.com"}).status_code == 200
    c.prefs(mailed, {"types": {"digest": {"channels": ["inbox", "email"], "emailAfter": 2}}})
    key = uid("key")
    mailed_id = c.publish([mailed], type="digest", idempotencyKey=key)["ids"][mailed]
    with srv.subscriber(mailed) as sub:
        assert sub.patch(f"/api/notifications/{mailed_id}", json={"read": True}
                         ).status_code == 200
    wait_until(lambda: "email suppressed: read" in summaries(c, mailed_id), 15)

    page = c.page()
    search(page, "id", quiet_id)
    assert "silent: quiet hours" in steps_of(page, quiet)
    assert page.locator(f'.trail[data-notification="{quiet_id}"]').count() == 1

    search(page, "user", pushed)
    got = steps_of(page, pushed)
    assert "push suppressed: tab visible" in got and got[0] == "stored"
    assert page.locator('.step.warn[data-kind="push.suppressed"]').count() == 1

    search(page, "key", key)
    got = steps_of(page, mailed)
    assert "email suppressed: read" in got and "read" in got
    times = page.locator(f'.recipient[data-user="{mailed}"] time').evaluate_all(
        "els => els.map(e => Date.parse(e.dateTime))")
    assert times == sorted(times)

    search(page, "id", "no-such-id")
    page.wait_for_function("() => document.querySelector('console-search .status')"
                           ".textContent === 'Nothing found.'")
    assert page.errors == [] or all("404" in e for e in page.errors)


# -- incidents --------------------------------------------------------------------------

def test_incidents_open_then_acknowledged(console: Console) -> None:
    c, srv = console, console.srv
    a, b, policy = uid("oncall"), uid("backup"), uid("pol")
    with srv.publisher() as pub:
        r = pub.put(f"/api/escalation-policies/{policy}", json={"steps": [
            {"targets": [a], "waitSeconds": 600, "skipIfNobodyActive": False},
            {"targets": [b], "waitSeconds": 600}]})
        assert r.status_code in (200, 201), r.text
    title = uid("DB down ")
    body = c.publish([], escalation=policy, type="alert", title=title, priority="urgent")
    incident, note = body["incident"], body["ids"][a]

    page = c.page()
    page.click("#tab-incidents")
    row = page.locator(f'li[data-incident="{incident}"]')
    row.wait_for()
    assert row.get_attribute("data-state") == "open" and title in row.inner_text()
    row.locator("button").click()
    detail = page.locator(f'article.incident[data-incident="{incident}"]')
    detail.wait_for()
    assert f"notified {a}" in detail.locator('.step[data-kind="notified"]').inner_text()
    assert page.evaluate("document.activeElement.tagName") == "H3"  # focus follows

    with srv.subscriber(a) as sub:
        assert sub.post(f"/api/notifications/{note}/ack").status_code == 200
    page.select_option("#incidents-state", "open")
    page.wait_for_function(
        f"() => !document.querySelector('li[data-incident=\"{incident}\"]')")
    page.select_option("#incidents-state", "recent")
    row = page.locator(f'li[data-incident="{incident}"]')
    row.wait_for()
    assert row.get_attribute("data-state") == "acked"
    row.locator("button").click()
    page.wait_for_selector(".incident .ack")
    assert f"Acknowledged by {a}" in page.locator(".incident .ack").inner_text()
    assert page.locator('.incident .step[data-kind="acked"]').count() == 1
    assert page.errors == []


# -- channel failures -------------------------------------------------------------------

def test_channel_failures_with_their_reason(console: Console) -> None:
    c, srv = console, console.srv
    user = uid("g")
    dev = c.push.device(user)
    with srv.subscriber(user) as sub:
        assert sub.post("/api/push-subscriptions", json=dev).status_code == 201
    c.push.service.set_response(dev["endpoint"], 410)
    with srv.publisher() as pub:
        assert pub.put(f"/api/users/{user}",
                       json={"email": f"{user}@example.com"}).status_code == 200
    c.prefs(user, {"types": {"alert": {"channels": ["inbox", "push", "email"],
                                       "emailAfter": 0}}})
    nid = c.publish([user], type="alert", priority="high")["ids"][user]

    def kinds() -> set[str]:
        with srv.publisher() as pub:
            items = pub.get("/api/console/failures").json()["failures"]
        return {f["kind"] for f in items if f["user"] == user}

    wait_until(lambda: {"push.gone", "email.failed"} <= kinds(), 20, kinds)

    page = c.page()
    page.click("#tab-failures")
    gone = page.locator('tr[data-kind="push.gone"]', has_text=user)
    gone.wait_for()
    cells = gone.locator("td").all_inner_texts()
    assert cells[1:5] == ["push", "gone", user, nid] and cells[5] == "410"
    failed = page.locator('tr[data-kind="email.failed"]', has_text=user).first
    failed.wait_for()
    reason = failed.locator("td").nth(5).inner_text()
    assert reason, "an email failure shows the reply it got"
    # the channel filter is built from what was reported
    page.select_option("#failures-channel", "push")
    page.wait_for_function("() => ![...document.querySelectorAll('tbody tr')]"
                           ".some(r => r.dataset.kind.startsWith('email.'))")
    with srv.publisher() as pub:
        only = pub.get("/api/console/failures", params={"channel": "email"}).json()
    assert {f["channel"] for f in only["failures"]} == {"email"}
    assert page.errors == []


def test_a_named_webhook_target_that_gives_up_is_listed(console: Console) -> None:
    """An escalation step's post to a named target has no user: its failure is listed
    all the same, with the target's name and the reason (the receiver's 404, final)."""
    c, srv = console, console.srv
    target, policy = uid("oncall-"), uid("pol-")
    with Receiver(new_secret()) as receiver, srv.publisher() as pub:
        receiver.answer(404)
        assert pub.put(f"/api/webhook-targets/{target}", json={
            "url": receiver.url, "format": "generic"}).status_code == 200
        assert pub.put(f"/api/escalation-policies/{policy}", json={"steps": [
            {"targets": [uid("t")], "webhooks": [target], "waitSeconds": 300}]}
        ).status_code == 201
        c.publish([], type="alert", title="Disk full", escalation=policy)

        def mine() -> list[dict[str, Any]]:
            items = pub.get("/api/console/failures",
                            params={"channel": "webhook"}).json()["failures"]
            return [f for f in items if f["target"] == target]

        (failure,) = wait_until(mine, 20, "the target's failure to be listed")
    assert failure["kind"] == "webhook.given_up" and failure["user"] is None
    assert failure["reason"] == "HTTP 404" and failure["detail"]["status"] == 404
    page = c.page()
    page.click("#tab-failures")
    row = page.locator('tr[data-kind="webhook.given_up"]', has_text=target)
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[1:4] == ["webhook", "given up", f"target {target}"]
    assert cells[5] == "HTTP 404"
    assert page.errors == []


# -- presence ---------------------------------------------------------------------------

def test_presence_per_topic(console: Console) -> None:
    c, srv = console, console.srv
    user, topic = uid("w"), uid("ops-")
    with hold_stream(srv, user, f"/api/topics/{topic}/stream", topics=[topic]):
        page = c.page()
        page.click("#tab-presence")
        item = page.locator(f'li[data-topic="{topic}"]')
        page.wait_for_function(
            f"() => {{ const b = [...document.querySelectorAll('console-presence button')]"
            f".find(x => x.textContent.includes('Refresh')); b.click();"
            f" return !!document.querySelector('li[data-topic=\"{topic}\"]'); }}",
            timeout=10_000, polling=500)
        assert "1 present" in item.inner_text()
        item.locator("button").press("Enter")
        member = page.locator(f'.people li[data-user="{user}"]')
        member.wait_for()
        assert member.get_attribute("data-state") in ("active", "idle")
    assert page.errors == []


# -- keyboard, phone, dark --------------------------------------------------------------

def test_keyboard_phone_and_dark(console: Console) -> None:
    page = console.page(viewport={"width": 375, "height": 740}, color_scheme="dark",
                        is_mobile=True, has_touch=True)
    page.focus("#tab-figures")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-search"
    assert page.get_attribute("#tab-search", "aria-selected") == "true"
    assert page.is_visible("#view-search") and not page.is_visible("#view-figures")
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.id") == "tab-presence"
    page.keyboard.press("ArrowRight")  # wraps around
    assert page.evaluate("document.activeElement.id") == "tab-figures"
    # nothing wider than the phone's screen but the scrolling tab strip and tables
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 375, overflow
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(20, 21, 24)", bg
    # every control has an accessible name
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, input, select')]
        .filter(e => !e.closest('[hidden]'))
        .filter(e => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
        .map(e => e.outerHTML)""")
    assert unnamed == []
    assert page.errors == []
