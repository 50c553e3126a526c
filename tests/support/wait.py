"""The one way a test waits for something to become true: poll a check until it gives a
truthy value or a deadline passes, then fail saying what was awaited.

Three faces of the same loop: ``wait_until`` blocks (tests that drive a server process from
plain synchronous code), ``eventually`` is awaited (tests on an event loop, where a
blocking sleep would stall the very thing being waited for), and ``wait_on_page`` blocks
while a Playwright page keeps running (its routes and exposed functions are served only
while Playwright has the thread, which ``time.sleep`` would keep from it).

A condition the page itself can evaluate is better awaited in the page
(``page.wait_for_function``); these are for conditions Python has to check."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# ``what`` may be a callable so that the failure message shows the state at the deadline
# (counts, last ids), not the state when the wait began.
What = str | Callable[[], str]


def _timed_out(within: float, what: What) -> AssertionError:
    said = what() if callable(what) else what
    return AssertionError(f"timed out after {within}s waiting for {said}")


def wait_until(check: Callable[[], T], within: float = 20, what: What = "condition",
               interval: float = 0.1, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``check`` until it returns something truthy; return that. ``sleep`` pauses
    between calls (seconds)."""
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise _timed_out(within, what)
        sleep(interval)


def stays(check: Callable[[], object], during: float, what: What = "condition",
          interval: float = 0.1, sleep: Callable[[float], None] = time.sleep) -> None:
    """The other side of a wait: ``check`` holds (gives something truthy) every time it is
    called for ``during`` seconds; fail the first time it does not."""
    deadline = time.monotonic() + during
    while True:
        if not check():
            said = what() if callable(what) else what
            raise AssertionError(f"{said} stopped holding")
        if time.monotonic() > deadline:
            return
        sleep(interval)


class Page(Protocol):
    """What ``wait_on_page`` needs of a Playwright page (sync API)."""

    def wait_for_timeout(self, timeout: float) -> None: ...


def wait_on_page(page: Page, check: Callable[[], T], within: float = 10,
                 what: What = "condition", interval: float = 0.05) -> T:
    """``wait_until``, pausing in ``page.wait_for_timeout`` so the page keeps running."""
    return wait_until(check, within, what, interval,
                      sleep=lambda s: page.wait_for_timeout(s * 1000))


async def eventually(check: Callable[[], T | Awaitable[T]], within: float = 10,
                     what: What = "condition", interval: float = 0.01) -> T:
    """Call ``check`` (plain or async) until it gives something truthy; return that."""
    deadline = time.monotonic() + within
    while True:
        got: Any = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise _timed_out(within, what)
        await asyncio.sleep(interval)
