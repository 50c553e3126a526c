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

    def take_now(self, key: str, rate: Rate) -> float:
        now = self.clock()
        buckets = self._buckets
        state = buckets.get(key)
        if state is None:
            tokens = float(rate.burst)
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
        else:
            tokens = min(float(rate.burst), state[0] + max(0.0, now - state[1]) * rate.per_s)
            buckets.move_to_end(key)
        if tokens >= 1.0:
            buckets[key] = (tokens - 1.0, now)
            return 0.0
        buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate.per_s

    async def take(self, key: str, rate: Rate) -> float:
        return self.take_now(key, rate)

    def charge_now(self, key: str, rate: Rate, cost: float) -> None:
        now = self.clock()
        buckets = self._buckets
        state = buckets.get(key)
        if state is None:
            tokens = float(rate.burst)
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
        else:
            tokens = min(float(rate.burst), state[0] + max(0.0, now - state[1]) * rate.per_s)
            buckets.move_to_end(key)
        buckets[key] = (tokens - cost, now)

    async def charge(self, key: str, rate: Rate, cost: float) -> None:
        self.charge_now(key, rate, cost)

    async def close(self) -> None:
        self._buckets.clear()
