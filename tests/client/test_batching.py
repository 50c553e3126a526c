"""The publishers batch concurrent publishes into bulk requests, against a real server
(SQLite and PostgreSQL): fewer requests, and every call still its own result, key,
error and retries. Requests are counted at the client's transport."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.client.proxy import DroppingProxy
from tests.support.server import ServerProcess
from tocsin.client import AsyncPublisher, Publisher, TocsinAPIError, ValidationError


class Counting(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths[request.url.path] += 1
        return await super().handle_async_request(request)


class SyncCounting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paths: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths[request.url.path] += 1
        return super().handle_request(request)


def unread(server: ServerProcess, user: str) -> int:
    with server.subscriber(user) as c:
        n: int = c.get("/api/notifications/unread-count").json()["unreadCount"]
    return n


async def test_concurrent_async_publishes_share_bulk_requests(
        server: ServerProcess, uid: str) -> None:
    counting = Counting()
    users = [f"{uid}-{i}" for i in range(300)]
    async with AsyncPublisher(server.url, server.api_key, transport=counting) as pub:
        results = await asyncio.gather(*(pub.publish([u], f"n{i}")
                                         for i, u in enumerate(users)))
    assert [set(r.ids) for r in results] == [{u} for u in users]
    assert len({r.ids[u] for r, u in zip(results, users, strict=True)}) == 300
    sent = sum(counting.paths.values())
    assert counting.paths["/api/notifications/bulk"] >= 1 and sent <= 5, counting.paths
    assert unread(server, users[0]) == unread(server, users[-1]) == 1


async def test_without_linger_each_publish_is_its_own_request(
        server: ServerProcess, uid: str) -> None:
    counting = Counting()
    async with AsyncPublisher(server.url, server.api_key, transport=counting,
                              linger_ms=0) as pub:
        await asyncio.gather(*(pub.publish([f"{uid}-{i}"], "x") for i in range(20)))
    assert counting.paths == {"/api/notifications": 20}


def test_concurrent_sync_publishes_share_bulk_requests(server: ServerProcess,
                                                       uid: str) -> None:
    counting = SyncCounting()
    users = [f"{uid}-{i}" for i in range(64)]
    with Publisher(server.url, server.api_key, transport=counting, linger_ms=20) as pub, \
            ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda u: pub.publish([u], "hi"), users))
    assert [set(r.ids) for r in results] == [{u} for u in users]
    assert counting.paths["/api/notifications/bulk"] >= 1
    assert sum(counting.paths.values()) < 64 / 2, counting.paths
    assert all(unread(server, u) == 1 for u in users[:3])


async def test_an_item_error_raises_in_its_own_call_only(server: ServerProcess,
                                                         uid: str) -> None:
    counting = Counting()
    async with AsyncPublisher(server.url, server.api_key, transport=counting) as pub:
        outcomes = await asyncio.gather(
            *(pub.publish([f"{uid}-{i}"], "ok") for i in range(10)),
            pub.publish([f"{uid}-bad\x00"], "bad"),
            pub.publish([f"{uid}-k"], "first", idempotency_key=f"key-{uid}"),
            return_exceptions=True)
        # the same key with another body: the single publish's 409, for this call only
        again = await asyncio.gather(
            pub.publish([f"{uid}-k"], "second", idempotency_key=f"key-{uid}"),
            pub.publish([f"{uid}-k2"], "fine"), return_exceptions=True)
    bad = outcomes[10]
    assert isinstance(bad, ValidationError) and bad.status == 400
    assert bad.code == "invalid_field" and bad.field == "recipients"
    assert all(not isinstance(o, BaseException) for o in outcomes[:10] + outcomes[11:])
    assert isinstance(again[0], TocsinAPIError) and again[0].status == 409
    assert not isinstance(again[1], BaseException)
    assert counting.paths["/api/notifications/bulk"] == 2, counting.paths
    assert unread(server, f"{uid}-k") == 1


async def test_a_lost_bulk_reply_is_retried_per_item_and_stored_once(
        server: ServerProcess, uid: str) -> None:
    users = [f"{uid}-{i}" for i in range(30)]
    with DroppingProxy(server.port, drop=1) as proxy:
        async with AsyncPublisher(proxy.url, server.api_key, backoff=0.05) as pub:
            results = await asyncio.gather(*(pub.publish([u], "once") for u in users))
        assert proxy.dropped == 1
    for u, r in zip(users, results, strict=True):
        with server.subscriber(u) as c:
            items = c.get("/api/notifications").json()["items"]
        assert [i["id"] for i in items] == [r.ids[u]]


def test_batching_settings_are_bounded() -> None:
    for bad in ({"linger_ms": -1}, {"linger_ms": 5000}, {"max_batch": 0},
                {"max_batch": 1001}):
        with pytest.raises(ValueError):
            Publisher("http://x", "k" * 20, **bad)  # type: ignore[arg-type]
