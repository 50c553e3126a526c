"""Token refresh: with 5-second tokens the stream ends with `expired` every few seconds;
the browser asks the page's token function for a new token and resumes from its last
id while notifications flow, losing and repeating nothing."""

from __future__ import annotations

import threading
import time

import pytest

from tests.e2e.conftest import Harness, fresh_user, wait_connected
from tests.support.services import need_chromium
from tests.support.wait import wait_on_page

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tocsin token refresh</title>
<link rel="icon" href="data:,">
<script type="module">
import { connect } from "/static/tocsin/tocsin.js";
const p = new URLSearchParams(location.search);
window.__arrived = [];
window.__tokenCalls = [];
window.tocsinClient = connect({
  user: p.get("user"),
  token: async (req) => {
    window.__tokenCalls.push(req.refused);
    return window.mintToken();  // exposed by the test: a new 5-second token
  },
});
tocsinClient.addEventListener("notification", (e) => window.__arrived.push(e.detail.title));
</script></head><body></body></html>
"""


def test_five_second_tokens_refresh_without_loss_or_repeat(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ctx = h.context()
    h.serve(ctx, "refresh.html", PAGE)
    minted: list[float] = []

    def mint_token() -> str:
        minted.append(time.monotonic())
        return h.srv.token(user, ttl=5)

    ctx.expose_function("mintToken", mint_token)
    page = ctx.new_page()
    page.goto(f"{h.srv.url}/e2e/refresh.html?user={user}")
    wait_connected(page)
    opens_before = page.evaluate("() => window.__esLog.length")

    # A notification every ~300 ms for ~20 s, from another thread.
    titles: list[str] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            with h.srv.publisher() as pub:
                deadline = time.monotonic() + 20
                i = 0
                while time.monotonic() < deadline:
                    title = f"n{i:03d}"
                    r = pub.post("/api/notifications", json={
                        "recipients": [user], "type": "test", "title": title})
                    assert r.status_code == 201, r.text
                    titles.append(title)
                    i += 1
                    time.sleep(0.3)
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=publish)
    t.start()
    # On the page: Playwright's loop (and so mintToken) is served while it waits.
    wait_on_page(page, lambda: not t.is_alive(), 60, "the publisher to finish", interval=0.5)
    t.join()
    assert not errors, errors
    assert len(titles) >= 50

    page.wait_for_function("(n) => window.__arrived.length >= n", arg=len(titles),
                           timeout=15_000)
    page.wait_for_timeout(500)
    arrived: list[str] = page.evaluate("() => window.__arrived")
    assert arrived == titles  # every one, exactly once, in order
    notes = page.evaluate("() => tocsinClient.state.notifications.map((n) => n.title)")
    assert sorted(notes) == sorted(titles)

    # The stream ended with `expired` and was reopened with a new token several times.
    reopened = page.evaluate("() => window.__esLog.length") - opens_before
    calls: list[bool] = page.evaluate("() => window.__tokenCalls")
    assert reopened >= 3, reopened
    assert len(calls) >= 4, calls  # the first connect and ≥ 3 refreshes
    assert sum(calls) >= 3, calls  # refreshes ask for a new token ({refused: true})
    assert page.evaluate("() => tocsinClient.state.connectionStatus") == "connected"
    assert page.evaluate("() => tocsinClient.state.transport") == "stream"
