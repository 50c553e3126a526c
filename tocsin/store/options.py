"""``StoreOptions``: what the assembly point decides about a store when it builds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tocsin.ids import now_ms
from tocsin.store.hooks import NO_HOOK, BatchHook


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What the assembly point (``service.py``) decides about a store when it builds
    it; nothing sets these on a store afterwards."""

    clock: Callable[[], int] = now_ms
    """The clock quiet hours, DND and live grouping are judged by (ms since the epoch;
    the node's clock, a file under ``--test-clock-file``)."""
    group_window_ms: int = 3600 * 1000
    """How long a group stays open after its newest publish (``--group-window``)."""
    pool_size: int = 10
    """PostgreSQL connections the store keeps open (``--db-pool-size``)."""
    max_overflow: int = 20
    """PostgreSQL connections it may open beyond ``pool_size`` under load
    (``--db-max-overflow``): a process opens at most their sum."""
    hook: BatchHook = NO_HOOK
    """The publish hook (attention and the channels' timers, ``store/hooks.py``);
    none: the store alone decides nothing beyond storing."""
