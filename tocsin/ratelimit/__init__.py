"""Rate limits: a token bucket per (route class, principal), in memory or in Redis.

A :class:`Rate` is written ``"N/s:burst"`` (``"10/s:50"``: 10 requests a second on
average, 50 at once after a quiet spell); ``/m`` and ``/h`` are accepted too, and
``off`` disables a limit. :func:`tocsin.units.parse_rate` is the one parser (settings
and tests); :class:`Rate` is re-exported here because the limiter protocol takes it.

Which store keeps the buckets is chosen like the broker: ``memory://`` keeps them in
this process (:class:`~tocsin.ratelimit.memory.MemoryLimiter`, checked synchronously
in the gate), ``redis://`` shares them between nodes and workers
(:class:`~tocsin.ratelimit.redis.RedisLimiter`, one Lua script per check, awaited in
front of the route). When Redis cannot be reached the Redis limiter *fails open*
(the request goes through) and counts it in ``tocsin_ratelimit_errors_total``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from tocsin.errors import TocsinError
from tocsin.units import Rate

__all__ = ["Rate", "RateLimited", "RateLimiter", "limiter_from_url", "retry_after"]


def retry_after(wait_s: float) -> int:
    """The ``Retry-After`` value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))


class RateLimited(TocsinError):
    """429 ``rate_limited``; :attr:`headers` carry ``Retry-After``."""

    def __init__(self, wait_s: float) -> None:
        self.retry_after = retry_after(wait_s)
        super().__init__("rate_limited", f"Too many requests; retry in {self.retry_after} s.")
        self.headers = ((b"retry-after", str(self.retry_after).encode()),)


@runtime_checkable
class RateLimiter(Protocol):
    """Token buckets by key. ``take`` spends one token of ``key``'s bucket (created
    full) and returns 0 if it could, else how many seconds until one is there.
    ``charge`` spends ``cost`` more whatever the bucket holds: the rest of the work of
    a request ``take`` admitted (a publish to 1,000 recipients). The bucket may go
    below zero, a debt the following ``take``s wait out at the rate."""

    async def take(self, key: str, rate: Rate) -> float: ...

    async def charge(self, key: str, rate: Rate, cost: float) -> None: ...

    async def close(self) -> None: ...


def limiter_from_url(url: str, on_error: Callable[[], None] | None = None) -> RateLimiter:
    """The limiter for a broker URL: memory for ``memory://``, Redis for ``redis://``
    (the same server; ``on_error`` is called each time a check failed open)."""
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        from tocsin.ratelimit.memory import MemoryLimiter

        return MemoryLimiter()
    if scheme in ("redis", "rediss", "unix"):
        from tocsin.ratelimit.redis import RedisLimiter

        return RedisLimiter(url, on_error=on_error)
    raise ValueError(f"unknown rate limiter URL scheme {scheme!r} in {url!r}")
