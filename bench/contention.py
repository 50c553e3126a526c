"""How much CPU other jobs take on this shared machine, measured, and waiting for a lull.

The machine's busy time (all cores, from ``/proc/stat``) minus what the
benchmark's own processes used is what everyone else took meanwhile. The load average
cannot tell that apart: it counts the benchmark's own runs too, and lags a minute.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU-seconds the machine's processes have run (every core, since boot): user, nice,
    system and steal of ``/proc/stat``'s first line (guest time is already inside user).
    Interrupt time is left out: much of it is the benchmark's own loopback traffic, which
    no process is charged for, so it cannot be told apart from others' (an undercount)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = fields
    return (user + nice + system + steal) / TICKS_PER_S


class OthersMeter:
    """Others' CPU over a span, in % of one core (200 = both cores of this machine).
    ``ours`` returns the CPU-seconds the benchmark's processes have used so far; a
    process that exits within the span (the server) is added by the caller."""

    def __init__(self, ours: Callable[[], float]) -> None:
        self.ours = ours
        self.t0 = time.monotonic()
        self.busy0 = busy_seconds()
        self.ours0 = ours()

    def pct(self, extra_ours: float = 0.0) -> float:
        wall = max(time.monotonic() - self.t0, 1e-9)
        others = (busy_seconds() - self.busy0) - (self.ours() - self.ours0) - extra_ours
        return round(max(0.0, 100.0 * others / wall), 1)


def wait_quiet(ours: Callable[[], float], below_pct: float, max_wait_s: float,
               window_s: float = 2.0) -> tuple[float, float]:
    """Sample others' CPU over ``window_s`` until it is below ``below_pct`` or
    ``max_wait_s`` has passed; returns (the last sample, the seconds waited)."""
    t0 = time.monotonic()
    while True:
        meter = OthersMeter(ours)
        time.sleep(window_s)
        pct = meter.pct()
        waited = time.monotonic() - t0
        if pct < below_pct or waited >= max_wait_s:
            return pct, round(waited, 1)
