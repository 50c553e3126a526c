"""The demo page's layout, from a designer's pass over it (issue 9): light and dark, desktop
and phone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import wait_connected
from tests.e2e.demo_server import DemoProcess, start_demo
from tests.support.services import need_chromium

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 375, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    need_chromium()
    d = start_demo(tmp_path_factory.mktemp("demo-layout"))
    yield d
    d.stop()


def open_page(browser: Any, demo: DemoProcess, scheme: str, device: dict[str, Any]) -> Any:
    ctx = browser.new_context(color_scheme=scheme, **device)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(f"{demo.url}/?user=alice")
    wait_connected(page)
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_card_hints_line_up_on_desktop(browser: Any, demo: DemoProcess, scheme: str) -> None:
    page = open_page(browser, demo, scheme, DESKTOP)
    try:
        # The hint under "Team activity" (beside its live pill) and the one under
        # "Playground" start at the same height.
        tops = page.evaluate("""() => [...document.querySelectorAll('.card')].slice(0, 2)
          .map(c => c.querySelector('.hint').getBoundingClientRect().top
                    - c.getBoundingClientRect().top)""")
        assert abs(tops[0] - tops[1]) <= 1, tops
        # the feed's history arrives on its own request, after the inbox is connected
        page.wait_for_selector(".feed-list li .text")
        sizes = page.evaluate("""() => ['.embed p', '.feed-list li .text']
          .map(s => getComputedStyle(document.querySelector(s)).fontSize)""")
        assert sizes == ["14px", "14px"]
    finally:
        page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_no_overflow_and_inline_code_stays_whole(browser: Any, demo: DemoProcess,
                                                       scheme: str) -> None:
    page = open_page(browser, demo, scheme, PHONE)
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        broken = page.evaluate("""() => [...document.querySelectorAll(':not(pre) > code')]
          .filter(c => c.getClientRects().length > 1).map(c => c.textContent)""")
        assert broken == []
    finally:
        page.context.close()
