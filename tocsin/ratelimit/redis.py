"""Token buckets in Redis, shared by every node and worker (``redis://``).

One Lua script per check: it refills the bucket from Redis's own clock (``TIME``, so
nodes with skewed clocks agree), spends a token if there is one, and lets the key
expire once the bucket would be full again (idle keys cost Redis nothing).

When Redis cannot be reached the check **fails open**: the request goes through and
``on_error`` is called (counted in ``tocsin_ratelimit_errors_total``). After a failure
Redis is not asked again for :data:`PAUSE_AFTER_ERROR_S`, so an outage costs each
request nothing rather than a timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from tocsin.redis_url import redact, split_url
from tocsin.units import Rate

log = logging.getLogger("tocsin.ratelimit")

KEY_PREFIX = "tocsin:rl:"
TIMEOUT_S = 0.25
PAUSE_AFTER_ERROR_S = 1.0

# ARGV: rate, burst, cost, force ("1": charge, spend ``cost`` whatever the bucket
# holds, possibly below zero; "0": take, spend it only if one token is there).
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local force = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
end
local wait = 0
if force or tokens >= 1 then
  tokens = tokens - cost
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisLimiter:
    """The :class:`~tocsin.ratelimit.RateLimiter` contract over one Redis server."""

    def __init__(self, url: str, on_error: Callable[[], None] | None = None,
                 prefix: str = KEY_PREFIX) -> None:
        self.url = redact(url)
        self._redis_url = split_url(url)[0]  # without the broker's own options
        self.prefix = prefix
        self.on_error = on_error
        self._client: Redis | None = None
        self._script: AsyncScript | None = None
        self._paused_until = 0.0
        self._down_since: float | None = None
        """When Redis first failed in this outage (``None`` while it answers): the
        outage is logged once as it starts and once as it ends, not per request."""
        self._let_through = 0

    def _bucket_script(self) -> AsyncScript:
        if self._script is None:
            self._client = Redis.from_url(
                self._redis_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S,
                retry_on_timeout=False, max_connections=64)
            self._script = self._client.register_script(TOKEN_BUCKET)  # EVALSHA
        return self._script

    async def take(self, key: str, rate: Rate) -> float:
        return await self._run(key, rate, 1.0, False)

    async def charge(self, key: str, rate: Rate, cost: float) -> None:
        await self._run(key, rate, cost, True)

    async def _run(self, key: str, rate: Rate, cost: float, force: bool) -> float:
        if time.monotonic() < self._paused_until:
            self._failed_open(None)
            return 0.0
        try:
            script = self._bucket_script()
            reply = await script(keys=[self.prefix + key], args=[
                repr(rate.per_s), rate.burst, repr(float(cost)), "1" if force else "0"])
        except Exception as exc:
            # Not only RedisError/OSError: whatever redis-py raises while building or
            # using its client (a TypeError from an option the URL gave it, a bad
            # reply) means "Redis unusable", and a rate limiter that cannot count lets
            # the request through rather than answering 500 to every subscriber.
            self._paused_until = time.monotonic() + PAUSE_AFTER_ERROR_S
            self._failed_open(exc)
            return 0.0
        if self._down_since is not None:
            log.warning("rate limiter: Redis at %s answers again after %.1fs; %d requests "
                        "went through unchecked meanwhile", self.url,
                        time.monotonic() - self._down_since, self._let_through)
            self._down_since = None
        return float(reply)

    def _failed_open(self, exc: BaseException | None) -> None:
        self._let_through += 1
        if exc is not None and self._down_since is None:
            self._down_since = time.monotonic()
            self._let_through = 1
            log.warning("rate limiter: Redis at %s failed (%s: %s); letting requests "
                        "through unchecked until it answers (asking again every %.0f s)",
                        self.url, type(exc).__name__, exc, PAUSE_AFTER_ERROR_S)
        if self.on_error is not None:
            self.on_error()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._script = self._client, None, None
            await client.aclose()
