"""The console against a real ``tocsin serve --console``: a local push service (so a
push can be suppressed or answered 410) and an SMTP address nothing listens on (so an
email fails with the reply the node got), real Chromium through Playwright."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.pushsvc import PushServiceThread
from tests.support.browser import chromium
from tests.support.server import ServerProcess, free_port, start_server
from tests.support.services import need_chromium
from tests.support.wait import wait_until

EXTRA = ["--console", "--push-allow-insecure", "--presence-interval", "500ms",
         "--timer-poll", "100ms", "--heartbeat", "1s", "--rate-reads", "off",
         "--webhook-allow-private"]  # a named webhook target on a local receiver


@dataclass
class Console:
    srv: ServerProcess
    push: PushServiceThread
    browser: Any
    contexts: list[Any] = field(default_factory=list)

    def page(self, *, signed_in: bool = True, **context: Any) -> Any:
        ctx = self.browser.new_context(**context)
        ctx.set_default_timeout(10_000)
        self.contexts.append(ctx)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.errors = errors
        page.goto(self.srv.url + "/console")
        if signed_in:
            page.fill("#api-key", self.srv.api_key)
            page.click("#signin-form button[type=submit]")
            page.wait_for_selector("#app:not([hidden])")
        return page

    def publish(self, users: list[str], **kw: Any) -> dict[str, Any]:
        with self.srv.publisher() as pub:
            body = {"type": kw.pop("type", "comment"), "title": "t", **kw}
            if users:  # an escalation may name no recipients: its policy does
                body["recipients"] = users
            r = pub.post("/api/notifications", json=body)
        assert r.status_code == 201, r.text
        reply: dict[str, Any] = r.json()
        return reply

    def prefs(self, user: str, prefs: dict[str, Any]) -> None:
        with self.srv.subscriber(user) as sub:
            assert sub.put("/api/preferences", json=prefs).status_code == 200

    def close(self) -> None:
        for ctx in self.contexts:
            with contextlib.suppress(Exception):
                ctx.close()
        self.contexts.clear()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess,
                                                                       PushServiceThread]]:
    need_chromium()
    tmp: Path = tmp_path_factory.mktemp("console")
    push = PushServiceThread().start()
    dead_smtp = f"smtp://127.0.0.1:{free_port()}"  # nothing listens: every send fails
    srv = start_server(tmp, extra=[*EXTRA, "--smtp-url", dead_smtp,
                                   "--smtp-from", "Tocsin <tocsin@example.com>"])
    try:
        push.service.expected_key = httpx.get(
            srv.url + "/api/push/vapid-public-key").json()["publicKey"]
        time.sleep(1)  # presence is known 1.5 intervals after the start
        yield srv, push
    finally:
        srv.stop()
        push.stop()


@pytest.fixture
def console(server: tuple[ServerProcess, PushServiceThread], browser: Any) -> Iterator[Console]:
    c = Console(server[0], server[1], browser)
    yield c
    c.close()


@contextlib.contextmanager
def hold_stream(srv: ServerProcess, user: str, path: str = "/api/notifications/stream",
                topics: list[str] | None = None) -> Iterator[None]:
    """A stream held open (a tab), read in a thread until the block ends."""
    stop = threading.Event()
    opened = threading.Event()

    def run() -> None:
        headers = {"Authorization": f"Bearer {srv.token(user, topics)}"}
        # the server pings every second (--heartbeat 1s): a line comes at least that often
        with httpx.Client(timeout=httpx.Timeout(5, read=5)) as c, \
                c.stream("GET", srv.url + path, headers=headers) as r:
            opened.set()
            with contextlib.suppress(httpx.ReadTimeout):
                for _ in r.iter_lines():
                    if stop.is_set():
                        return

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_until(opened.is_set, 10, "the stream to open")
    try:
        yield
    finally:
        stop.set()
        t.join(10)
