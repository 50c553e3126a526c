"""The one fake clock: the time a ``tocsin serve`` started with ``--test-clock-file``
reads, frozen in a file that the test moves forward (every node given the same file
shares the same time), and a server started on it for one test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


@contextmanager
def clocked_server(backend: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, Clock]]:
    """A server on a fresh database of ``backend`` reading a fresh clock at ``T0``, with
    fast timers."""
    clock = Clock(tmp_path / "clock")
    with served(backend, tmp_path, extra=[*FAST, *clock.flags]) as srv:
        yield srv, clock
