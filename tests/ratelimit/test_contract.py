"""The RateLimiter contract: the same tests for the memory and the Redis limiter."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.support.services import REDIS_URL, need_redis
from tocsin.ratelimit import Rate, RateLimiter, limiter_from_url


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "redis":
        need_redis()
        lim = limiter_from_url(REDIS_URL + "?channel=ignored-by-the-limiter")
    else:
        lim = limiter_from_url("memory://")
    try:
        yield lim
    finally:
        await lim.close()


def key() -> str:
    return "test:" + uuid.uuid4().hex


async def test_is_a_rate_limiter(limiter: RateLimiter) -> None:
    assert isinstance(limiter, RateLimiter)


async def test_a_fresh_bucket_allows_the_burst_then_refuses(limiter: RateLimiter) -> None:
    k, rate = key(), Rate(1.0, 5)
    assert [await limiter.take(k, rate) for _ in range(5)] == [0.0] * 5
    wait = await limiter.take(k, rate)
    assert 0.5 < wait <= 1.0  # the next token is about a second away at 1/s


async def test_keys_have_their_own_buckets(limiter: RateLimiter) -> None:
    a, b, rate = key(), key(), Rate(0.1, 2)
    for _ in range(2):
        assert await limiter.take(a, rate) == 0.0
    assert await limiter.take(a, rate) > 0
    assert await limiter.take(b, rate) == 0.0


async def test_tokens_come_back_at_the_rate(limiter: RateLimiter) -> None:
    k, rate = key(), Rate(20.0, 1)
    assert await limiter.take(k, rate) == 0.0
    assert await limiter.take(k, rate) > 0
    await asyncio.sleep(0.2)  # 4 tokens' worth, the bucket holds 1
    assert await limiter.take(k, rate) == 0.0
    assert await limiter.take(k, rate) > 0


async def test_refused_requests_do_not_spend_tokens(limiter: RateLimiter) -> None:
    k, rate = key(), Rate(0.5, 1)
    assert await limiter.take(k, rate) == 0.0
    first = await limiter.take(k, rate)
    for _ in range(20):
        later = await limiter.take(k, rate)
    assert 0 < later <= first  # refusals never push the next token further away


async def test_concurrent_takes_never_exceed_the_burst(limiter: RateLimiter) -> None:
    k, rate = key(), Rate(0.01, 10)
    waits = await asyncio.gather(*(limiter.take(k, rate) for _ in range(50)))
    assert sum(1 for w in waits if w == 0.0) == 10


async def test_a_charge_spends_whatever_the_bucket_holds_and_takes_wait_out_the_debt(
        limiter: RateLimiter) -> None:
    """``charge`` (the work of an admitted request beyond its token) never refuses;
    the bucket goes below zero, and ``take`` waits until it is back above one."""
    k, rate = key(), Rate(10.0, 5)
    assert await limiter.take(k, rate) == 0.0  # 4 left
    await limiter.charge(k, rate, 24)  # -20
    wait = await limiter.take(k, rate)
    assert 2.0 < wait <= 2.1  # 21 tokens at 10/s
    await limiter.charge(k, rate, 10)  # charged even in debt: -30
    assert 3.0 < await limiter.take(k, rate) <= 3.1
