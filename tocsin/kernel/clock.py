"""The node's clock: the system clock, or (under ``--test-clock-file``) a file the
tests move by hand, shared by every node. The assembly point picks one and gives it
to the kernel; timers, attention and grouping are all judged by it."""

from __future__ import annotations

from pathlib import Path

from tocsin.ids import now_ms
from tocsin.scheduler import Clock


def file_clock(path: str) -> Clock:
    """A clock read from a file holding ms since the epoch (tests move it by hand,
    shared by every node); the system clock while the file is missing or empty."""
    p = Path(path)

    def now() -> int:
        try:
            text = p.read_text().strip()
        except OSError:
            text = ""
        return int(text) if text else now_ms()

    return now
