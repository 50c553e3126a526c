"""Rate limits: a token bucket per (route class, principal), in memory or in Redis.

A :class:`Rate` is written ``"N/s:burst"`` (``"10/s:50"``: 10 requests a second on
average, 50 at once after a quiet spell); ``/m`` and ``/h`` are accepted too, and
``off`` disables a limit. :func:`parse_rate` is the one parser (settings and tests).

Which store keeps the buckets is chosen like the broker: ``memory://`` keeps them in
this process (:class:`~tocsin.ratelimit.memory.MemoryLimiter`, checked synchronously
in the gate), ``redis://`` shares them between nodes and workers
(:class:`~tocsin.ratelimit.redis.RedisLimiter`, one Lua script per check, awaited in
front of the route). When Redis cannot be reached the Redis limiter *fails open*
(the request goes through) and counts it in ``tocsin_ratelimit_errors_total``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tocsin.errors import TocsinError

__all__ = ["OFF", "Rate", "RateLimited", "RateLimiter", "limiter_from_url", "parse_rate",
           "retry_after"]

OFF = "off"
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*(?::\s*(\d+)\s*)?$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    """Tokens added per second."""
    burst: int
    """Bucket size: how many requests may arrive at once after a quiet spell."""


def parse_rate(text: str) -> Rate | None:
    """``"10/s:50"`` -> ``Rate(10.0, 50)``; ``"10/s"`` -> burst = max(1, ceil(10));
    ``"off"`` (or empty) -> ``None``. Raises ``ValueError`` with the accepted forms."""
    if text.strip().lower() in ("", OFF):
        return None
    m = _RATE.match(text)
    if not m:
        raise ValueError(f"not a rate: {text!r} (use N/s:burst such as 10/s:50, "
                         "N/m or N/h, or 'off')")
    per_s = float(m.group(1)) / _PER[m.group(2)]
    burst = int(m.group(3)) if m.group(3) is not None else max(1, math.ceil(per_s))
    if per_s <= 0 or burst < 1:
        raise ValueError(f"not a rate: {text!r} (the rate and the burst must be above 0)")
    return Rate(per_s, burst)


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
