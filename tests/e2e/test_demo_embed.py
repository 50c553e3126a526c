"""``tocsin demo`` as an embedding target: the snippet it prints, pasted into a page on
another origin, shows live notifications; a restart keeps open tabs working."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SPY_JS, wait_connected
from tests.e2e.demo_server import start_demo
from tests.support.server import free_port
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser


def printed(log: str, what: str) -> str:
    m = re.search(rf"{what}\s+(\S+)", log)
    assert m, log
    return m.group(1)


@pytest.fixture
def page_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static server on another origin (another port) for the embedding page."""
    root = tmp_path / "site"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def test_printed_snippet_works_on_a_page_of_another_origin(
        browser: Any, tmp_path: Path, page_server: tuple[str, Path]) -> None:
    need_chromium()
    origin, root = page_server
    demo = start_demo(tmp_path, extra=("--cors-origin", origin))
    try:
        log = demo.log()
        start = log.index('<script type="module" src="')
        snippet = log[start:log.index("</script>", log.index("<script type=\"module\">")) + 9]
        assert demo.url in snippet and "YOUR-TOCSIN" not in snippet
        (root / "index.html").write_text(
            '<!doctype html><html><head><meta charset="utf-8"><title>my app</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f"<body><h1>My app</h1>\n{snippet}\n</body></html>")
        ctx = browser.new_context()
        ctx.set_default_timeout(15_000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{origin}/index.html")
        page.wait_for_function("() => customElements.get('tocsin-bell') !== undefined")
        page.wait_for_function("""() => {
          const b = document.querySelector('tocsin-bell');
          const c = b && b.client;
          return !!c && c.connectionStatus === 'connected' && c.state.loaded;
        }""")
        httpx.post(f"{demo.url}/demo/api/send", json={
            "to": ["alice"], "from": "bob", "title": "Hello from the demo",
            "priority": "high"}).raise_for_status()
        page.locator("tocsin-toasts .toast", has_text="Hello from the demo").wait_for()
        assert errors == []
        ctx.close()
    finally:
        demo.stop()


def test_demo_restart_keeps_open_tabs_working(browser: Any, tmp_path: Path) -> None:
    need_chromium()
    demo = start_demo(tmp_path)
    port = int(demo.url.rsplit(":", 1)[1])
    ctx = browser.new_context()
    ctx.add_init_script(SPY_JS)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    try:
        page.goto(f"{demo.url}/?user=alice")
        wait_connected(page)
        # The same key and secret after the restart: the tab's token stays valid.
        key, secret = printed(demo.log(), "publisher API key"), printed(demo.log(), "JWT secret")
        demo.stop()
        page.wait_for_function("() => tocsinClient.connectionStatus !== 'connected'")
        demo = start_demo(tmp_path, port=port)
        assert printed(demo.log(), "publisher API key") == key
        assert printed(demo.log(), "JWT secret") == secret
        wait_connected(page, timeout=20_000)
        before = page.evaluate("tocsinClient.state.unreadCount")
        httpx.post(f"{demo.url}/demo/api/send", json={
            "to": ["alice"], "from": "bob", "title": "After the restart"}).raise_for_status()
        page.wait_for_function(f"() => tocsinClient.state.unreadCount === {before + 1}")
        assert page.locator("tocsin-status").get_attribute("state") == "ok"
    finally:
        ctx.close()
        demo.stop()
