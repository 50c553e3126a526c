"""Long-polling fallback: a stream that never opens (a buffering proxy, here a route that
never answers) makes the browser poll, say so in its status, share the polls with the
other tabs, and go back to streaming once streaming works."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Harness, fresh_user, wait_connected
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tocsin fallback</title>
<link rel="icon" href="data:,">
<script type="module">
import { connect } from "/static/tocsin/tocsin.js";
import "/static/tocsin/define.js";
const p = new URLSearchParams(location.search);
window.__arrived = [];
window.tocsinClient = connect({
  token: p.get("token"),
  streamTimeout: Number(p.get("streamTimeout")),
  streamRetry: Number(p.get("streamRetry")),
});
tocsinClient.addEventListener("notification", (e) => window.__arrived.push(e.detail.title));
</script></head>
<body><tocsin-status delay="0"></tocsin-status></body></html>
"""


def open_page(h: Harness, ctx: Any, user: str, **params: Any) -> Any:
    from urllib.parse import urlencode

    page = ctx.new_page()
    q = urlencode({"token": h.srv.token(user), **{k: str(v) for k, v in params.items()}})
    page.goto(f"{h.srv.url}/e2e/fallback.html?{q}")
    return page


def arrived(page: Any) -> list[str]:
    titles: list[str] = page.evaluate("() => window.__arrived")
    return titles


def test_falls_back_to_polling_when_the_stream_never_opens(h: Harness) -> None:
    need_chromium()
    user = fresh_user()
    ctx = h.context()
    h.serve(ctx, "fallback.html", PAGE)
    held: list[Any] = []
    # A proxy that buffers the stream: the request goes out, nothing ever comes back.
    ctx.route(f"{h.srv.url}/api/notifications/stream*", lambda route: held.append(route))

    page = open_page(h, ctx, user, streamTimeout=1500, streamRetry=3000)
    wait_connected(page, transport="poll")
    assert held, "the stream was tried first"
    status = page.locator("tocsin-status")
    assert status.get_attribute("state") == "polling"
    assert status.locator(".banner").inner_text() == "Live (polling)"
    assert page.evaluate("() => tocsinClient.role") in ("leader", "solo")

    # Events flow over the polls, in order, each once; a second tab hears them from the
    # leader (it does not poll itself).
    second = open_page(h, ctx, user, streamTimeout=1500, streamRetry=3000)
    second.wait_for_function("() => window.tocsinClient && tocsinClient.state.loaded"
                             " && tocsinClient.state.transport === 'poll'")
    assert second.evaluate("() => tocsinClient.role") == "follower"
    for i in range(5):
        h.publish(user, f"polled {i}")
    want = [f"polled {i}" for i in range(5)]
    for p in (page, second):
        p.wait_for_function("(n) => window.__arrived.length >= n", arg=5)
        assert arrived(p) == want
    assert second.locator("tocsin-status").get_attribute("state") == "polling"

    # The later tries of streaming hang too (still polling, nothing lost meanwhile).
    page.wait_for_timeout(4000)
    assert page.evaluate("() => tocsinClient.state.transport") == "poll"
    assert len(held) >= 2, "streaming was tried again"
    h.publish(user, "while retrying")
    page.wait_for_function("() => window.__arrived.includes('while retrying')")

    # Streaming works again: the next try takes over from the polls.
    ctx.unroute(f"{h.srv.url}/api/notifications/stream*")
    wait_connected(page, 15_000, transport="stream")
    second.wait_for_function("() => tocsinClient.state.transport === 'stream'")
    assert status.get_attribute("state") == "ok"
    assert status.locator(".banner").is_hidden()
    h.publish(user, "streamed")
    want += ["while retrying", "streamed"]
    for p in (page, second):
        p.wait_for_function("() => window.__arrived.includes('streamed')")
        p.wait_for_timeout(300)
        assert arrived(p) == want
    assert page.evaluate("() => tocsinClient.state.notifications.length") == len(want)
