"""`<tocsin-presence>` in Chromium against a real server: members appear live,
a hidden tab makes its user idle (unless another of the user's tabs is visible), many
tabs count once, a closed page leaves after the grace, and the list is accessible."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from html import escape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.e2e.conftest import SPY_JS
from tests.support.server import ServerProcess, start_server
from tests.support.services import need_chromium
from tests.support.wait import wait_on_page

pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<script type="module" src="/static/tocsin/define.js"></script></head>
<body><tocsin-presence topic="{topic}" token="{token}"></tocsin-presence></body></html>"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    need_chromium()
    s = start_server(tmp_path_factory.mktemp("presence-e2e"),
                     extra=["--presence-interval", "1s", "--rate-reads", "off"])
    yield s
    s.stop()


def serve(route: Any) -> None:
    q = parse_qs(urlsplit(route.request.url).query)
    route.fulfill(status=200, content_type="text/html", body=PAGE.format(
        topic=escape(q["topic"][0]), token=escape(q["token"][0])))


def open_page(srv: ServerProcess, ctx: Any, user: str, topic: str) -> Any:
    page = ctx.new_page()
    q = urlencode({"topic": topic, "token": srv.token(user, topics=[topic])})
    page.goto(f"{srv.url}/e2e/presence.html?{q}")
    return page


def members(page: Any) -> dict[str, str]:
    got: dict[str, str] = page.evaluate("""() => {
      const el = document.querySelector("tocsin-presence");
      const out = {};
      for (const li of el?.shadowRoot?.querySelectorAll("li[data-user]") ?? [])
        out[li.dataset.user] = li.dataset.state;
      return out;
    }""")
    return got


def wait_members(page: Any, want: dict[str, str], timeout: float = 8.0) -> None:
    wait_on_page(page, lambda: members(page) == want, timeout,
                 what=lambda: f"members {want}; they are {members(page)}")


def new_context(browser: Any, srv: ServerProcess) -> Any:
    ctx = browser.new_context()
    ctx.add_init_script(SPY_JS)
    ctx.route(f"{srv.url}/e2e/**", serve)
    return ctx


def test_presence_live_idle_tabs_and_leave(browser: Any, srv: ServerProcess) -> None:
    topic = f"room-{int(time.time() * 1000)}"
    a_ctx, b_ctx = new_context(browser, srv), new_context(browser, srv)
    try:
        alice = open_page(srv, a_ctx, "alice", topic)
        wait_members(alice, {"alice": "active"})
        bob1 = open_page(srv, b_ctx, "bob", topic)
        bob2 = open_page(srv, b_ctx, "bob", topic)  # a second tab: still one member
        wait_members(alice, {"alice": "active", "bob": "active"})
        wait_members(bob2, {"alice": "active", "bob": "active"})
        # Accessible: a list named by its count, names as text, avatars hidden.
        label = alice.evaluate("""() => document.querySelector("tocsin-presence")
            .shadowRoot.querySelector("ul").getAttribute("aria-label")""")
        assert label == "2 people here"
        texts = alice.evaluate("""() => [...document.querySelector("tocsin-presence")
            .shadowRoot.querySelectorAll("li .sr-only")].map((e) => e.textContent)""")
        assert texts == ["alice", "bob"]
        # One of bob's tabs hidden: bob is still active (the other is visible).
        bob1.evaluate("window.__setHidden(true)")
        time.sleep(1.8)
        assert members(alice)["bob"] == "active"
        # Both hidden: bob is idle, for alice and for bob's own tabs.
        bob2.evaluate("window.__setHidden(true)")
        wait_members(alice, {"alice": "active", "bob": "idle"})
        wait_members(bob1, {"alice": "active", "bob": "idle"})
        bob2.evaluate("window.__setHidden(false)")
        wait_members(alice, {"alice": "active", "bob": "active"})
        # Bob closes everything: gone after the grace (1 s here).
        b_ctx.close()
        wait_members(alice, {"alice": "active"})
        assert alice.evaluate("""() => document.querySelector("tocsin-presence")
            .getAttribute("count")""") == "1"
    finally:
        for ctx in (a_ctx, b_ctx):
            with contextlib.suppress(Exception):
                ctx.close()
