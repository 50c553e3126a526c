"""The shared test helpers themselves: the wait gives what it waited for and, at its
deadline, says what it waited for as things stood then; ``stays`` fails the first time
its check does not hold; the in-process fake clock moves only when told."""

from __future__ import annotations

import itertools

import pytest

from tests.support.clock import ManualClock
from tests.support.wait import eventually, stays, wait_on_page, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert wait_until(lambda: next(calls) >= 2 and "ready", within=5, interval=0.001) == "ready"


def test_wait_until_fails_naming_what_it_awaited() -> None:
    with pytest.raises(AssertionError, match=r"after 0.05s waiting for the moon"):
        wait_until(lambda: False, within=0.05, what="the moon", interval=0.01)


async def test_eventually_awaits_an_async_check() -> None:
    calls = itertools.count()

    async def check() -> int:
        return max(0, next(calls) - 2)

    assert await eventually(check, within=5, interval=0.001) == 1


async def test_eventually_describes_the_state_at_the_deadline() -> None:
    seen: list[int] = []

    def check() -> bool:
        seen.append(len(seen))
        return False

    with pytest.raises(AssertionError, match=r"waiting for more; seen \d{2,}"):
        await eventually(check, within=0.1, interval=0.001,
                         what=lambda: f"more; seen {len(seen)}")


class FakePage:
    """Counts the pauses a wait takes on the page (in ms, as Playwright's)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def wait_for_timeout(self, timeout: float) -> None:
        self.pauses.append(timeout)


def test_wait_on_page_pauses_on_the_page() -> None:
    page, calls = FakePage(), itertools.count()
    assert wait_on_page(page, lambda: next(calls) >= 3, within=5, interval=0.002) is True
    assert page.pauses == [2.0, 2.0, 2.0]


def test_stays_fails_the_first_time_its_check_does_not_hold() -> None:
    calls = itertools.count()
    with pytest.raises(AssertionError, match="no push stopped holding"):
        stays(lambda: next(calls) < 3, during=5, what="no push", interval=0.001)
    assert next(calls) == 4  # it stopped at the first failure
    stays(lambda: True, during=0.01, interval=0.001)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(1_000)
    assert clock() == clock() == 1_000
    clock.advance(500)
    assert clock() == 1_500
    clock.now = 7
    assert clock() == 7
