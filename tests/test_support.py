"""The shared test helpers themselves: the wait gives what it waited for and, at its
deadline, says what it waited for as things stood then."""

from __future__ import annotations

import itertools

import pytest

from tests.support.wait import eventually, wait_until


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
