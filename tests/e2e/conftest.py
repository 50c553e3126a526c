"""Browser tests: real headless Chromium (Playwright) against a real Tocsin server.

Pages are served from the server's own origin (``/e2e/page.html`` is answered by a
Playwright route, everything else, including ``/static/tocsin/*.js`` and the API, by the
real server), so Web Locks, BroadcastChannel and EventSource behave as in production.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.demo_server import DemoProcess, start_demo
from tests.support.browser import chromium
from tests.support.server import ServerProcess, start_server
from tests.support.services import need_chromium

HERE = Path(__file__).parent

# The test page: the three components and a client built from query parameters.
# ``t.<attr>=<value>`` sets attributes on <tocsin-toasts>; links are recorded, not followed.
PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tocsin e2e</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<script type="module">
import { connect } from "/static/tocsin/tocsin.js";
import "/static/tocsin/define.js";
const p = new URLSearchParams(location.search);
const toasts = document.createElement("tocsin-toasts");
for (const [k, v] of p) if (k.startsWith("t.")) toasts.setAttribute(k.slice(2), v);
document.body.append(toasts);
window.__opened = [];
window.tocsinClient = connect({
  token: p.get("token"),
  pageSize: Number(p.get("pageSize") || 30),
  backoffBase: Number(p.get("backoffBase") || 1000),
  openUrl: (url) => window.__opened.push(url),
});
</script></head>
<body>
<header><tocsin-bell></tocsin-bell></header>
<tocsin-status delay="0"></tocsin-status>
<main><p>Page content</p><button id="outside">A button on the page</button></main>
</body></html>
"""

# The same with no script of the page's own: the components make their client from their
# ``server`` and ``token`` attributes (filled in from the query string by the route).
ATTRS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tocsin e2e (attributes)</title>
<link rel="icon" href="data:,">
<script type="module" src="{server}/static/tocsin/define.js"></script></head>
<body>
<tocsin-status></tocsin-status>
<tocsin-bell server="{server}" token="{token}"></tocsin-bell>
<tocsin-toasts duration-medium="60000"></tocsin-toasts>
</body></html>
"""


def serve_page(route: Any) -> None:
    from html import escape
    from urllib.parse import parse_qs, urlsplit

    url = urlsplit(route.request.url)
    if url.path == "/e2e/attrs.html":
        q = parse_qs(url.query)
        body = ATTRS_HTML.format(server=escape(q.get("server", [""])[0]),
                                 token=escape(q.get("token", [""])[0]))
    else:
        body = PAGE_HTML
    route.fulfill(status=200, content_type="text/html", body=body)


# Headless Chromium never hides a tab, so tests that need a hidden tab switch
# document.visibilityState by hand; and the Notification constructor is observed
# (the real one is still called when it can be).
SPY_JS = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState",
    { configurable: true, get() { return hidden ? "hidden" : "visible"; } });
  Object.defineProperty(Document.prototype, "hidden",
    { configurable: true, get() { return hidden; } });
  window.__setHidden = (h) => {
    hidden = h;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  window.__notes = []; window.__noteObjs = [];
  window.__permissionRequests = 0; window.__focused = 0;
  const realFocus = window.focus.bind(window);
  window.focus = () => { window.__focused++; realFocus(); };
  // Every EventSource the page opens, by page time (to observe reconnect backoff).
  window.__esLog = [];
  const RealES = window.EventSource;
  window.EventSource = class extends RealES {
    constructor(url, init) { super(url, init); window.__esLog.push(performance.now()); }
  };
  const Real = window.Notification;
  if (!Real) return;
  function Spy(title, opts = {}) {
    window.__notes.push({ title, body: opts.body, tag: opts.tag,
      requireInteraction: !!opts.requireInteraction, data: opts.data ?? null });
    let n;
    try { n = new Real(title, opts); } catch { n = new EventTarget(); n.close = () => {}; }
    window.__noteObjs.push(n);
    return n;
  }
  Object.defineProperty(Spy, "permission", { get: () => window.__permOverride || Real.permission });
  Spy.requestPermission = (...args) => {
    window.__permissionRequests++;
    if (window.__permAnswer) {
      window.__permOverride = window.__permAnswer;
      return Promise.resolve(window.__permAnswer);
    }
    return Real.requestPermission(...args);
  };
  Spy.prototype = Real.prototype;
  window.Notification = Spy;
})();
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    need_chromium()
    srv = start_server(tmp_path_factory.mktemp("e2e"), extra=["--heartbeat", "2s"])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    """``tocsin demo`` for the test module that asks for it, on a database of its own."""
    need_chromium()
    d = start_demo(tmp_path_factory.mktemp("demo"))
    yield d
    d.stop()


def fresh_user(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Harness:
    srv: ServerProcess
    browser: Any
    contexts: list[Any] = field(default_factory=list)

    def context(self, **kw: Any) -> Any:
        ctx = self.browser.new_context(**kw)
        ctx.add_init_script(SPY_JS)
        ctx.route(f"{self.srv.url}/e2e/**", serve_page)
        ctx.set_default_timeout(10_000)
        self.contexts.append(ctx)
        return ctx

    def serve(self, ctx: Any, name: str, html: str) -> None:
        """Answer ``/e2e/<name>`` in ``ctx`` with ``html``: a page of the test's own."""
        ctx.route(f"{self.srv.url}/e2e/{name}*", lambda route: route.fulfill(
            status=200, content_type="text/html", body=html))

    def open(self, ctx: Any, user: str, *, wait: bool = True, path: str = "page.html",
             **params: Any) -> Any:
        from urllib.parse import urlencode

        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors  # type: ignore[attr-defined]
        q = urlencode({"token": self.srv.token(user), **{k: str(v) for k, v in params.items()}})
        page.goto(f"{self.srv.url}/e2e/{path}?{q}")
        if wait:
            wait_connected(page)
        return page

    def publish(self, user: str | list[str], title: str, **kw: Any) -> dict[str, str]:
        recipients = [user] if isinstance(user, str) else user
        with self.srv.publisher() as pub:
            r = pub.post("/api/notifications",
                         json={"recipients": recipients, "type": kw.pop("type", "test"),
                               "title": title, **kw})
            assert r.status_code == 201, r.text
            ids: dict[str, str] = r.json()["ids"]
            return ids

    def unread(self, user: str) -> int:
        with self.srv.subscriber(user) as sub:
            n: int = sub.get("/api/notifications/unread-count").json()["unreadCount"]
            return n

    def connections(self) -> int:
        with self.srv.publisher() as pub:
            n: int = pub.get("/api/stats").json()["connections"]
            return n

    def close(self) -> None:
        for ctx in self.contexts:
            with contextlib.suppress(Exception):
                ctx.close()


def wait_connected(page: Any, timeout: float = 10_000, transport: str | None = None) -> None:
    """Wait (in the page) until its client has loaded and is connected, over
    ``transport`` if one is named."""
    page.wait_for_function(
        "(t) => window.tocsinClient && tocsinClient.state.loaded"
        " && tocsinClient.state.connectionStatus === 'connected'"
        " && (t === null || tocsinClient.state.transport === t)", arg=transport,
        timeout=timeout)


def state(page: Any, expr: str) -> Any:
    """Evaluate ``expr`` with ``s`` bound to the client's state."""
    return page.evaluate(f"() => {{ const s = tocsinClient.state; return {expr}; }}")


@pytest.fixture
def h(server: ServerProcess, browser: Any) -> Iterator[Harness]:
    need_chromium()
    harness = Harness(server, browser)
    yield harness
    harness.close()


def artifacts_dir() -> Path:
    d = Path(os.environ.get("TOCSIN_E2E_ARTIFACTS", "/tmp/tocsin-e2e"))
    d.mkdir(parents=True, exist_ok=True)
    return d
