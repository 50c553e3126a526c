"""What only one implementation has: the memory limiter's bound, Redis failing open."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from pathlib import Path

import pytest
import redis.asyncio

from tests.broker.redis_server import PrivateRedis, need_redis_server
from tests.support.clock import ManualClock
from tests.support.server import free_port
from tests.support.services import REDIS_URL, need_redis
from tocsin.ratelimit import Rate
from tocsin.ratelimit.memory import MemoryLimiter
from tocsin.ratelimit.redis import KEY_PREFIX, PAUSE_AFTER_ERROR_S, RedisLimiter


def test_memory_limiter_keeps_at_most_max_keys() -> None:
    lim = MemoryLimiter(max_keys=100)
    for i in range(10_000):
        lim.take_now(f"k{i}", Rate(1.0, 1))
    assert len(lim) == 100


def test_memory_limiter_forgets_the_least_recently_used_key() -> None:
    clock = ManualClock(0.0)
    lim = MemoryLimiter(max_keys=2, clock=clock)
    rate = Rate(0.001, 1)
    assert lim.take_now("old", rate) == 0.0
    assert lim.take_now("busy", rate) == 0.0
    assert lim.take_now("old", rate) > 0  # "old" is now the most recently used
    assert lim.take_now("new", rate) == 0.0  # evicts "busy", not "old"
    assert lim.take_now("old", rate) > 0
    assert lim.take_now("busy", rate) == 0.0  # forgotten: a full bucket again


def test_memory_limiter_refills_by_its_clock() -> None:
    clock = ManualClock(100.0)
    lim = MemoryLimiter(clock=clock)
    rate = Rate(2.0, 4)
    assert [lim.take_now("k", rate) for _ in range(4)] == [0.0] * 4
    assert lim.take_now("k", rate) == pytest.approx(0.5)
    clock.advance(0.5)
    assert lim.take_now("k", rate) == 0.0
    clock.advance(3600)
    assert [lim.take_now("k", rate) for _ in range(5)].count(0.0) == 4  # capped at burst


async def test_redis_down_fails_open_and_is_counted() -> None:
    errors: list[None] = []
    lim = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0",
                       on_error=lambda: errors.append(None))
    try:
        rate = Rate(0.001, 1)
        assert [await lim.take("k", rate) for _ in range(5)] == [0.0] * 5
        assert len(errors) == 5  # one real failure, then 4 skipped while paused
    finally:
        await lim.close()


@pytest.mark.redis
async def test_redis_keys_expire_once_the_bucket_would_be_full() -> None:
    need_redis()
    lim = RedisLimiter(REDIS_URL)
    k = uuid.uuid4().hex
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await lim.take(k, Rate(10.0, 5))
        ttl = await client.pttl(KEY_PREFIX + k)
        assert 0 < ttl <= 1100 + 100  # 1 token at 10/s = 100 ms, plus a second's slack
    finally:
        await client.aclose()
        await lim.close()


async def test_an_outage_is_logged_once_as_it_starts_and_once_as_it_ends(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Not one WARNING per failed check: one with the cause, one on recovery."""
    need_redis_server()
    server = PrivateRedis(tmp_path).start()
    lim = RedisLimiter(server.url)
    rate = Rate(1000.0, 1000)
    caplog.set_level(logging.INFO, "tocsin.ratelimit.redis")
    try:
        await lim.take("k", rate)
        server.stop()
        for _ in range(3):  # three real attempts, each after the pause
            await lim.take("k", rate)
            await asyncio.sleep(PAUSE_AFTER_ERROR_S + 0.05)
        server.start()
        await lim.take("k", rate)
    finally:
        await lim.close()
        server.stop()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2, lines
    assert re.search(r"failed \(\w*Error: .*\S\); letting requests through", lines[0])
    assert re.search(r"answers again after \d+\.\ds; 3 requests went through", lines[1])


@pytest.mark.redis
async def test_a_client_the_url_breaks_fails_open_too() -> None:
    """An option redis-py cannot take (``?backlog=``: the settings refuse it at start,
    this is the defence behind that) makes redis-py raise ``TypeError`` at the first
    connection, not a ``RedisError``: still "Redis unusable", so the request goes
    through instead of answering 500."""
    need_redis()
    errors: list[None] = []
    lim = RedisLimiter(REDIS_URL + "?backlog=10000", on_error=lambda: errors.append(None))
    try:
        assert await lim.take("u", Rate(1, 1)) == 0.0
        assert await lim.take("u", Rate(1, 1)) == 0.0  # paused: not asked again
        assert len(errors) == 2
    finally:
        await lim.close()
