"""The demo page's layout, from a designer's pass over it (issue 9): light and dark, desktop
and phone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import wait_connected
from tests.e2e.demo_server import DemoProcess

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 375, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


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


def box(page: Any, sel: str) -> dict[str, float]:
    b: dict[str, float] = page.evaluate(
        f"() => {{ const r = document.querySelector({sel!r}).getBoundingClientRect();"
        " return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}; }")
    return b


def test_results_headings_and_the_feed_card_on_desktop(browser: Any, demo: DemoProcess) -> None:
    """Issue 22 item 9: every button's result in the hints' style beside it, the same
    space above every heading of a card, no empty feed card."""
    page = open_page(browser, demo, "light", DESKTOP)
    try:
        hint = page.evaluate("(() => { const s = getComputedStyle(document.querySelector('.hint'));"
                             " return [s.fontSize, s.color]; })()")
        for sel in ("#pg-result", "#quiet-result", "#inc-result", "#reach-result"):
            page.evaluate(f"document.querySelector({sel!r}).textContent ="
                          " 'Done: alice@example.test, bob@example.test, carol@example.test'")
            got = page.evaluate("(() => { const s = getComputedStyle(document.querySelector("
                                f"{sel!r})); return [s.fontSize, s.color]; }})()")
            assert got == hint, sel
            # beside its button, every line of it, not wrapping under it
            button = page.evaluate(f"document.querySelector({sel!r}).parentElement"
                                   ".querySelector('button').getBoundingClientRect().right")
            assert box(page, sel)["left"] >= button, sel
        gaps = page.evaluate("""() => [...document.querySelectorAll('.card > h2')]
          .filter(h => h.previousElementSibling)
          .map(h => [h.textContent, h.getBoundingClientRect().top
                     - h.previousElementSibling.getBoundingClientRect().bottom])""")
        assert gaps and all(g >= 24 for _, g in gaps), gaps
        blank = page.evaluate("""() => { const card = document.querySelector('.feed');
          const last = [...card.children].filter(c => c.getClientRects().length).pop();
          return card.getBoundingClientRect().bottom - last.getBoundingClientRect().bottom; }""")
        assert blank <= 24
    finally:
        page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_digest_toast_is_solid(browser: Any, demo: DemoProcess, scheme: str) -> None:
    """Issue 22 item 2: "N notifications while you were away" on the toasts' surface."""
    ctx = browser.new_context(color_scheme=scheme, **DESKTOP)
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    try:
        page.goto(f"{demo.url}/?user=carol&quietSeconds=2")
        wait_connected(page)
        page.click("#quiet")
        page.locator("tocsin-toasts .toast.digest").wait_for()
        bg = page.evaluate("""() => getComputedStyle(document.querySelector('tocsin-toasts')
          .shadowRoot.querySelector('.toast.digest')).backgroundColor""")
        assert bg == ("rgb(255, 255, 255)" if scheme == "light" else "rgb(29, 33, 41)")
    finally:
        ctx.close()


def test_phone_header_labels_and_the_sheet_over_a_still_page(browser: Any,
                                                             demo: DemoProcess) -> None:
    """Issue 22 items 5 and 14 on the demo: a header that scrolls away, with its labels;
    the sheet covers the header's controls and the page behind does not scroll."""
    httpx.post(f"{demo.url}/demo/api/send", json={
        "to": ["bob"], "from": "alice", "title": "Phone check", "priority": "medium",
        "type": "message"}).raise_for_status()
    page = open_page(browser, demo, "light", PHONE)
    page.goto(f"{demo.url}/?user=bob")
    wait_connected(page)
    try:
        assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).position") \
            not in ("sticky", "fixed")
        for sel in (".users .label", ".dnd label"):
            assert box(page, sel)["height"] > 10, sel
        page.locator("tocsin-bell button.bell").tap()
        page.locator("tocsin-bell .panel").wait_for()
        # The header's DND select is under the sheet's backdrop, not above it.
        hit = page.evaluate("""() => { const r = document.querySelector('#dnd-select')
          .getBoundingClientRect();
          return document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)?.id
            || document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)?.tagName; }""")
        assert hit != "dnd-select"
        y = page.evaluate("scrollY")
        page.mouse.move(180, 20)
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(300)
        assert page.evaluate("scrollY") == y
        mark_all = page.evaluate("""() => document.querySelector('tocsin-bell').shadowRoot
          .querySelector('.all').getBoundingClientRect().height""")
        assert mark_all <= 48  # one line
        page.locator("tocsin-bell .prefs-btn").tap()
        page.locator("tocsin-bell .type-push-min").first.wait_for()
        small = page.evaluate("""() => {
          const root = document.querySelector('tocsin-bell').shadowRoot;
          return [...root.querySelectorAll('.panel button, .panel select, .panel input')]
            .filter(el => el.getClientRects().length)
            .map(el => { const t = el.closest('label') ?? el;
              return [el.className || el.tagName, t.getBoundingClientRect().height,
                      el.tagName === 'BUTTON' || el.type === 'checkbox'
                        ? 16 : parseFloat(getComputedStyle(el).fontSize)]; })
            .filter(([, h, f]) => h < 44 || f < 16); }""")
        assert small == []
        # A type's push select stays on its label's line.
        off = page.evaluate("""() => [...document.querySelector('tocsin-bell').shadowRoot
          .querySelectorAll('.type-prefs .row2')].map(r => r.querySelector('select')
            .getBoundingClientRect().top - r.querySelector('label').getBoundingClientRect().top)""")
        assert off and all(abs(o) < 24 for o in off), off
        page.keyboard.press("Escape")
        page.wait_for_function("getComputedStyle(document.documentElement).overflow !== 'hidden'")
    finally:
        page.context.close()


def test_caught_up_leaves(browser: Any, demo: DemoProcess) -> None:
    """Issue 22 item 14: "Caught up: N updates arrived while you were away" goes away."""
    page = open_page(browser, demo, "light", DESKTOP)
    try:
        page.context.set_offline(True)
        page.locator("#feed-state", has_text="offline").wait_for()
        httpx.post(f"{demo.url}/demo/api/send", json={
            "to": ["carol"], "from": "bob", "title": "While away", "priority": "low",
            "type": "message"}).raise_for_status()
        page.context.set_offline(False)
        page.locator("#feed-replay").wait_for()
        page.locator("#feed-replay").wait_for(state="hidden", timeout=20_000)
    finally:
        page.context.close()


def test_demo_start_prints_no_smtp_chatter(demo: DemoProcess) -> None:
    """Issue 22 item 14: the SMTP sink's connection lines (aiosmtpd's "mail.log" INFO)."""
    log = demo.log()
    assert "Available AUTH" not in log and "Peer:" not in log and "mail.log" not in log, log


def test_presence_says_what_the_avatars_are(browser: Any, demo: DemoProcess) -> None:
    """Issue 22 item 14: a visible label beside the avatars, tooltips with names."""
    page = open_page(browser, demo, "light", DESKTOP)
    try:
        page.locator("#feed-presence li[data-user='alice']").wait_for()
        caption = page.locator("#feed-presence .caption")
        assert caption.is_visible() and "here" in caption.inner_text()
        assert page.locator("#feed-presence li[data-user='alice']").get_attribute("title") \
            == "Alice"
    finally:
        page.context.close()
