"""The one way a test waits for something to become true: poll a check until it gives a
truthy value or a deadline passes, then fail saying what was awaited.

Two faces of the same loop: ``wait_until`` blocks (tests that drive a server process from
plain synchronous code), ``eventually`` is awaited (tests on an event loop, where a
blocking sleep would stall the very thing being waited for)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

# ``what`` may be a callable so that the failure message shows the state at the deadline
# (counts, last ids), not the state when the wait began.
What = str | Callable[[], str]


def _timed_out(within: float, what: What) -> AssertionError:
    said = what() if callable(what) else what
    return AssertionError(f"timed out after {within}s waiting for {said}")


def wait_until(check: Callable[[], T], within: float = 20, what: What = "condition",
               interval: float = 0.1) -> T:
    """Call ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise _timed_out(within, what)
        time.sleep(interval)


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
