"""The one fake clock, in two forms: the time a ``tocsin serve`` started with
``--test-clock-file`` reads, frozen in a file that the test moves forward (every node
given the same file shares the same time), with a server started on it for one test; and
``ManualClock``, the same idea in process, for code that takes a ``() -> now``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

from tests.support.server import ServerProcess, served

T0 = 2_000_000_000_000  # ms since the epoch (2033-05-18): far from any real "now"
# Timers polled every 100 ms: a moved clock is acted on at once, not after the default.
FAST = ["--timer-poll", "100ms", "--heartbeat", "1s"]


class Clock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.set(T0)

    def set(self, ms: int) -> None:
        # Written aside then renamed: a server never reads a half-written number.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(ms))
        tmp.replace(self.path)
        self.now = ms

    def advance(self, seconds: float) -> None:
        self.set(self.now + int(seconds * 1000))

    @property
    def flags(self) -> list[str]:
        """The ``tocsin serve`` arguments that make a server read this clock."""
        return ["--test-clock-file", str(self.path)]


N = TypeVar("N", int, float)


class ManualClock(Generic[N]):
    """A ``() -> now`` that stands still until the test moves it (``now`` in whatever unit
    the code under test counts: ms for the scheduler, seconds for the rate limiter)."""

    def __init__(self, now: N) -> None:
        self.now = now

    def __call__(self) -> N:
        return self.now

    def advance(self, by: N) -> None:
        self.now += by


@contextmanager
def clocked_server(backend: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, Clock]]:
    """A server on a fresh database of ``backend`` reading a fresh clock at ``T0``, with
    fast timers."""
    clock = Clock(tmp_path / "clock")
    with served(backend, tmp_path, extra=[*FAST, *clock.flags]) as srv:
        yield srv, clock
