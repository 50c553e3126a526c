"""Take ``docs/screenshot.png`` (the demo as Alice, with Bob's messages arriving) and
``docs/phone.png`` (the same inbox on a 375 px phone, the center open as a sheet).

    .venv/bin/python -m tests.e2e.make_screenshot [OUT.png]

Runs a real ``tocsin demo`` on a free port with a throwaway database.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import wait_connected
from tests.e2e.demo_server import start_demo
from tests.support.browser import CHROMIUM_ARGS
from tests.support.services import CHROMIUM

ROOT = Path(__file__).resolve().parents[2]


def send(url: str, to: str, sender: str, title: str, priority: str, body: str = "",
         type: str = "message", group: str | None = None, source: str = "workspace") -> None:
    httpx.post(f"{url}/demo/api/send", json={
        "to": [to], "from": sender, "title": title, "priority": priority, "body": body,
        "type": type, "groupKey": group, "source": source}).raise_for_status()


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        demo = start_demo(Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                ctx = browser.new_context(viewport={"width": 1280, "height": 900},
                                          device_scale_factor=1, color_scheme="light")
                page = ctx.new_page()
                page.goto(f"{demo.url}/?user=alice")
                wait_connected(page)
                url = demo.url
                send(url, "alice", "bob", "Bob liked your post", "low", type="like",
                     group="likes:alice:onboarding-post", source="social")
                send(url, "alice", "carol", "Carol liked your post", "low", type="like",
                     group="likes:alice:onboarding-post", source="social")
                send(url, "alice", "bob", "Can you review the Q3 plan?", "medium",
                     body="Left you a comment on slide 4.")
                send(url, "alice", "carol", "Deploy blocked: approval needed", "high",
                     body="Release 2.4 is waiting for your sign-off.", type="approval")
                send(url, "bob", "alice", "Standup moved to 10:30", "low")
                page.wait_for_function("() => tocsinClient.state.toastQueue.length >= 2")
                page.locator("tocsin-bell button.bell").click()
                page.wait_for_timeout(400)
                # Keep the two toasts that matter in the picture (low ones off the stack).
                page.evaluate("tocsinClient.state.toastQueue.filter(t => t.priority === 'low')"
                              ".forEach(t => tocsinClient.dismissToast(t.id))")
                page.mouse.move(1100, 860)  # hover the toasts so they stay for the picture
                page.wait_for_timeout(300)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                # The phone: the center as a sheet over the page.
                phone = browser.new_context(viewport={"width": 375, "height": 667},
                                            device_scale_factor=2, is_mobile=True,
                                            has_touch=True, color_scheme="light")
                pp = phone.new_page()
                pp.goto(f"{demo.url}/?user=alice")
                wait_connected(pp)
                pp.locator("tocsin-bell button.bell").tap()
                pp.wait_for_timeout(400)
                pp.screenshot(path=str(out.with_name("phone.png")))
                browser.close()
        finally:
            demo.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png")
