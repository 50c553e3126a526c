"""Token buckets in this process's memory (one node, ``memory://``)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from tocsin.units import Rate

DEFAULT_MAX_KEYS = 100_000
"""Buckets kept at most (about 150 bytes each: ~15 MB). Past it the least recently
used bucket is forgotten, which only ever lets that key start again with a full
bucket: many distinct keys cannot grow memory without limit."""


class MemoryLimiter:
    """The :class:`~tocsin.ratelimit.RateLimiter` contract in memory; ``take_now`` is
    the same check, synchronous (the gate calls it inline)."""

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, key: str, rate: Rate, now: float) -> float:
        """``key``'s tokens at ``now`` (a new bucket starts full; the oldest is
        forgotten past ``max_keys``), marked most recently used."""
        buckets = self._buckets
        state = buckets.get(key)
        if state is None:
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
            return float(rate.burst)
        buckets.move_to_end(key)
        return min(float(rate.burst), state[0] + max(0.0, now - state[1]) * rate.per_s)

    def take_now(self, key: str, rate: Rate) -> float:
        now = self.clock()
        tokens = self._refill(key, rate, now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate.per_s

    async def take(self, key: str, rate: Rate) -> float:
        return self.take_now(key, rate)

    def charge_now(self, key: str, rate: Rate, cost: float) -> None:
        now = self.clock()
        self._buckets[key] = (self._refill(key, rate, now) - cost, now)

    async def charge(self, key: str, rate: Rate, cost: float) -> None:
        self.charge_now(key, rate, cost)

    async def close(self) -> None:
        self._buckets.clear()
