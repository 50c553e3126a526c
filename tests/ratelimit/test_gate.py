"""Rate limits as a client meets them: 429 ``rate_limited`` with ``Retry-After``,
decided in the gate after authentication and before the body is read.

In-process (the memory limiter, checked inline) and, for Redis, two real server
processes sharing their buckets (the check awaited in front of the route)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.inprocess import BASE_URL, InProcess, in_process, lifespan
from tests.support.server import JWT_SECRET, start_server
from tests.support.services import REDIS_URL, need_redis
from tocsin.app import create_app
from tocsin.config import Settings

EVENT = {"type": "chat", "title": "x" * 100}


@contextlib.asynccontextmanager
async def app_of(tmp_path: Path, **settings: Any) -> AsyncIterator[InProcess]:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}", **settings) as app:
        yield app


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    assert "retry" in r.json()["error"]["message"].lower()


async def post_many(client: httpx.AsyncClient, path: str, n: int,
                    body: dict[str, Any] | None = None) -> list[httpx.Response]:
    return [await client.post(path, json=body or EVENT) for _ in range(n)]


async def test_default_topic_post_limit_stops_the_amplification(tmp_path: Path) -> None:
    """The issue's case: a subscriber posting topic events as fast as it can."""
    async with app_of(tmp_path) as app, \
            app.subscriber("mallory", ["room:*"]) as sub:
        started = time.monotonic()
        rs = await post_many(sub, "/api/topics/room:1/events", 120,
                             {"type": "spam", "title": "x", "data": {"pad": "y" * 15_000}})
        refilled = 10 * (time.monotonic() - started)  # 10/s came back meanwhile
    ok = [r for r in rs if r.status_code == 201]
    assert [r.status_code for r in rs[:50]] == [201] * 50  # the burst
    assert len(ok) <= 50 + refilled + 1
    for r in rs:
        if r.status_code != 201:
            assert_limited(r)


async def test_limit_is_checked_before_the_body_is_read(tmp_path: Path) -> None:
    async with app_of(tmp_path, rate_topic_posts="1/s:2") as app, \
            app.subscriber("u", ["t"]) as sub:
        assert [r.status_code for r in await post_many(sub, "/api/topics/t/events", 2)] \
            == [201, 201]
        # Not JSON and too large: the 429 comes first, nothing was read.
        r = await sub.post("/api/topics/t/events", content=b"not json",
                               headers={"Content-Type": "text/plain"})
        assert_limited(r)
        assert r.headers["retry-after"] == "1"


async def test_buckets_are_per_user_and_per_route_class(tmp_path: Path) -> None:
    async with app_of(tmp_path, rate_topic_posts="0.1/s:2", rate_reads="0.1/s:3") as app, \
            app.subscriber("a", ["t"]) as a, app.subscriber("b", ["t"]) as b:
        await post_many(a, "/api/topics/t/events", 2)
        assert_limited(await a.post("/api/topics/t/events", json=EVENT))
        assert (await b.post("/api/topics/t/events", json=EVENT)).status_code == 201
        # a's reads have their own bucket
        codes = [(await a.get("/api/notifications")).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await a.get("/api/notifications/unread-count")
        assert_limited(r)
        assert int(r.headers["retry-after"]) == 10  # 1 token at 0.1/s


async def test_publishers_are_not_limited_by_default(tmp_path: Path) -> None:
    async with app_of(tmp_path) as app, \
            app.publisher() as pub:
        rs = await post_many(pub, "/api/topics/t/events", 120)
        rs += await post_many(pub, "/api/notifications", 120,
                                  {"recipients": ["x"], "type": "t", "title": "t"})
    assert {r.status_code for r in rs} == {201}


async def test_publish_limit_is_one_bucket_for_every_api_key(tmp_path: Path) -> None:
    s = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                 api_keys=["key-one-0123456789", "key-two-0123456789"], jwt_secret=JWT_SECRET,
                 rate_publish="1/m:2")
    app = create_app(s)
    note = {"recipients": ["x"], "type": "t", "title": "t"}
    async with lifespan(app):
        one, two = (httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                      headers={"Authorization": f"Bearer {k}"})
                    for k in ("key-one-0123456789", "key-two-0123456789"))
        async with one, two:
            assert (await one.post("/api/notifications", json=note)).status_code == 201
            assert (await one.post("/api/topics/t/events", json=EVENT)).status_code == 201
            r = await one.post("/api/notifications", json=note)
            assert_limited(r)
            assert r.headers["retry-after"] == "60"  # one token at 1/m
            assert_limited(await one.post("/api/topics/t/events", json=EVENT))
            # A deployment's keys are one publisher (rotation): the other key shares the
            # bucket, so a rotation never doubles the budget.
            assert_limited(await two.post("/api/notifications", json=note))
            assert (await one.get("/api/stats")).status_code == 200  # only publishes count


async def test_429_carries_cors_headers_that_expose_retry_after(tmp_path: Path) -> None:
    async with app_of(tmp_path, rate_reads="1/m:1",
                      cors_origins=["https://app.test"]) as app, \
            app.subscriber("u") as sub:
        headers = {"Origin": "https://app.test"}
        await sub.get("/api/notifications", headers=headers)
        r = await sub.get("/api/notifications", headers=headers)
    assert_limited(r)
    assert r.headers["access-control-allow-origin"] == "https://app.test"
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()


async def test_off_turns_a_limit_off(tmp_path: Path) -> None:
    async with app_of(tmp_path, rate_topic_posts="off") as app, \
            app.subscriber("u", ["t"]) as sub:
        rs = await post_many(sub, "/api/topics/t/events", 70)
    assert {r.status_code for r in rs} == {201}


@pytest.mark.redis
def test_redis_buckets_are_shared_by_nodes_and_limit_stream_connects(tmp_path: Path) -> None:
    need_redis()
    extra = ["--rate-topic-posts", "1/m:3", "--rate-reads", "1/m:2"]
    nodes = [start_server(tmp_path / str(i), broker=REDIS_URL, extra=extra)
             for i in range(2) if (tmp_path / str(i)).mkdir() is None]
    try:
        user = "redis-" + uuid.uuid4().hex  # buckets outlive the test in Redis
        subs = [n.subscriber(user, ["shared"]) for n in nodes]
        codes = [subs[i % 2].post("/api/topics/shared/events", json=EVENT).status_code
                 for i in range(4)]
        assert codes == [201, 201, 201, 429]
        r = subs[0].post("/api/topics/shared/events", json=EVENT)
        assert_limited(r)
        assert r.headers["retry-after"] == "60"
        # Streams: one token per connect, from the reads bucket, across nodes.
        statuses = []
        for i in range(3):
            with subs[i % 2].stream("GET", "/api/notifications/stream") as s:
                statuses.append(s.status_code)
        assert statuses == [200, 200, 429]
        for s in subs:
            s.close()
        metrics = httpx.get(nodes[0].url + "/metrics").text
        assert 'tocsin_rejections_total{reason="rate_limited"}' in metrics
    finally:
        for n in nodes:
            n.stop()
