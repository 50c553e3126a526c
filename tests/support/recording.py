"""What every test stream reader shares: the events it recorded, a wait for the n-th,
and stopping its background task. A reader (SSE, WebSocket, long-poll, or SSE failing
over between nodes) only says how it reads and hands what it got to ``_add``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Generic, Protocol, Self, TypeVar

from tests.support.ids import seq_of
from tests.support.wait import eventually


class HasId(Protocol):
    @property
    def id(self) -> str | int: ...


E = TypeVar("E", bound=HasId)


@dataclass(eq=False)  # readers compare (and hash) by identity unless they say otherwise
class Recording(Generic[E]):
    # Keyword-only so that each reader's own fields can come first and positionally.
    _: KW_ONLY
    events: list[E] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _add(self, items: list[E]) -> None:
        async with self._changed:
            self.events.extend(items)
            self._changed.notify_all()

    def _matching(self, pred: Callable[[E], bool] | None) -> list[E]:
        return [e for e in self.events if pred is None or pred(e)]

    def _describe(self) -> str:
        """The reader's state, for a wait that failed (readers add what they know)."""
        return ""

    async def wait_for(self, n: int, timeout: float = 20,
                       pred: Callable[[E], bool] | None = None) -> list[E]:
        """Wait until at least ``n`` events (those ``pred`` accepts, if given) arrived;
        return them all."""
        async def enough() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self._matching(pred)) >= n)

        try:
            await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"got {len(self._matching(pred))} of {n} events after {timeout}s: "
                f"last ids {[e.id for e in self.events][-20:]}{self._describe()}"
            ) from None
        return self.events if pred is None else self._matching(pred)

    async def until(self, check: Callable[[Self], object], within: float = 10) -> None:
        """Wait until ``check(self)`` holds, for what a count cannot say (a state reached,
        a kind of event seen); a reader that failed says why at once."""
        def reached() -> bool:
            if self._task is not None and self._task.done():
                self._task.result()  # the reader failed (or ended): say why, now
            return bool(check(self))

        await eventually(reached, within, what=lambda: (
            f"the reader's check; last events {self.events[-20:]}{self._describe()}"))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @property
    def ids(self) -> list[int]:
        return [e.id if isinstance(e.id, int) else seq_of(e.id) for e in self.events]
