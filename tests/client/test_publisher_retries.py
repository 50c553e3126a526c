"""Publisher retries, unit part: httpx mock transports decide what each attempt gets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tocsin.client import AsyncPublisher, Publisher, TocsinAPIError, TocsinConnectionError
from tocsin.client import _http as publisher_module

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers the n-th request with the n-th step: a response, or an exception."""

    def __init__(self, *steps: httpx.Response | type[httpx.TransportError]) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, httpx.Response):
            return step
        raise step("scripted", request=request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def ok(body: Any, status: int = 201, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def err(status: int, code: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code}},
                          headers=headers)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the sync publisher waited (without waiting)."""
    waited: list[float] = []
    monkeypatch.setattr(publisher_module.time, "sleep", waited.append)
    return waited


def sync(script: Script, **kw: Any) -> Publisher:
    return Publisher("http://tocsin.test", "k" * 20, transport=httpx.MockTransport(script),
                     **kw)


def test_a_lost_reply_is_retried_with_the_same_idempotency_key(sleeps: list[float]) -> None:
    script = Script(httpx.RemoteProtocolError, httpx.ReadTimeout,
                    ok({"ids": {"a": "n1"}}))
    with sync(script) as pub:
        assert (pub.publish(["a"], "Hi")).ids == {"a": "n1"}
    keys = {b["idempotencyKey"] for b in script.bodies()}
    assert len(script.requests) == 3 and len(keys) == 1
    assert len(next(iter(keys))) == 36  # a uuid4
    assert len(sleeps) == 2 and 0 < sleeps[0] < sleeps[1] * 2
    # Each publish gets its own key; a given key is used as is.
    script = Script(ok({"ids": {"a": "n2"}}), ok({"ids": {"a": "n3"}}))
    with sync(script) as pub:
        pub.publish(["a"], "One")
        pub.publish(["a"], "Two", idempotency_key="mine")
    first, second = script.bodies()
    assert first["idempotencyKey"] != "mine" and second["idempotencyKey"] == "mine"


def test_retry_after_is_honoured_and_5xx_retried(sleeps: list[float]) -> None:
    script = Script(err(429, "rate_limited", **{"Retry-After": "7"}),
                    err(503, "store_unavailable"), err(500, "internal"),
                    ok({"ids": {"a": "n1"}}))
    with sync(script) as pub:
        assert (pub.publish(["a"], "Hi")).ids == {"a": "n1"}
    assert sleeps[0] == 7.0 and len(sleeps) == 3


def test_retries_run_out_and_raise(sleeps: list[float]) -> None:
    script = Script(*[err(503, "store_unavailable")] * 3)
    with sync(script, retries=2) as pub, pytest.raises(TocsinAPIError) as caught:
        pub.publish(["a"], "Hi")
    assert caught.value.status == 503 and caught.value.code == "store_unavailable"
    script = Script(*[httpx.ConnectError] * 2)
    # One exception family: the transport's error is the cause, not what is raised.
    with sync(script, retries=1) as pub, pytest.raises(TocsinConnectionError) as lost:
        pub.stats()
    assert isinstance(lost.value.__cause__, httpx.ConnectError)


def test_topic_events_are_not_repeated_once_they_may_have_arrived(
        sleeps: list[float]) -> None:
    # A topic event has no idempotency key: a lost reply or a 500 is not retried...
    for step in (httpx.RemoteProtocolError, err(500, "internal")):
        script = Script(step)
        with sync(script) as pub, pytest.raises((TocsinConnectionError, TocsinAPIError)):
            pub.post_event("team", "Deployed")
        assert len(script.requests) == 1
    # ...but a connection never made, a 429 or a 503 are (nothing happened).
    script = Script(httpx.ConnectError, err(429, "rate_limited"), err(503, "x"),
                    ok({"id": "e-1", "topic": "team"}))
    with sync(script) as pub:
        assert pub.post_event("team", "Deployed", actor="ci")["id"] == "e-1"
    assert len(script.requests) == 4


def test_errors_are_not_retried_and_carry_the_servers_fields(sleeps: list[float]) -> None:
    body = {"error": {"code": "too_long", "message": "Title too long", "field": "title"}}
    script = Script(httpx.Response(400, json=body))
    with sync(script) as pub, pytest.raises(TocsinAPIError) as caught:
        pub.publish(["a"], "x")
    e = caught.value
    assert (e.status, e.code, e.message, e.field) == (400, "too_long", "Title too long",
                                                      "title")
    assert sleeps == [] and len(script.requests) == 1
    assert TocsinAPIError(404, "not_found", "gone").field is None


def test_every_route_and_its_request() -> None:
    script = Script(ok({"ids": {"a": "n1", "b": "n2"}}), ok({"id": "1-1"}),
                    ok({"items": [], "nextCursor": None, "lastEventId": "0"}, 200),
                    ok({"token": "t.o.k", "expiresAt": 1_700_000_000_000}),
                    ok({"node": "x"}, 200), ok({"any": 1}, 200))
    with sync(script) as pub:
        pub.publish(["a", "b"], "T", type="deploy", body="B", priority="high",
                    group_key="g", url="https://x.example/1", actor="ci", source="build",
                    data={"n": 1}, ttl=60, idempotency_key="k")
        pub.post_event("team:core", "Deployed", type="deploy", data={"v": 2})
        pub.topic_events("team:core", limit=10, since="1-0")
        tok = pub.token_info("alice", ["team:*"], ttl=120)
        assert pub.stats() == {"node": "x"}
        assert pub.request("GET", "/api/future", params={"q": "1"}) == {"any": 1}
    assert tok.token == "t.o.k" and tok.expires_at == 1_700_000_000
    r = script.requests
    assert [(x.method, x.url.path) for x in r] == [
        ("POST", "/api/notifications"), ("POST", "/api/topics/team:core/events"),
        ("GET", "/api/topics/team:core/events"), ("POST", "/api/tokens"),
        ("GET", "/api/stats"), ("GET", "/api/future")]
    assert all(x.headers["authorization"] == "Bearer " + "k" * 20 for x in r)
    assert r[0].headers["content-type"] == "application/json"
    assert script.bodies()[0] == {
        "recipients": ["a", "b"], "type": "deploy", "title": "T", "body": "B",
        "priority": "high", "groupKey": "g", "url": "https://x.example/1", "actor": "ci",
        "source": "build", "data": {"n": 1}, "ttl": 60, "idempotencyKey": "k"}
    assert script.bodies()[1] == {"type": "deploy", "title": "Deployed", "body": "",
                                  "data": {"v": 2}}
    assert dict(r[2].url.params) == {"limit": "10", "since": "1-0"}
    assert script.bodies()[3] == {"user": "alice", "topics": ["team:*"], "ttl": 120}


async def test_async_publisher_retries_with_the_same_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []

    async def no_wait(delay: float) -> None:
        waited.append(delay)

    monkeypatch.setattr(publisher_module.asyncio, "sleep", no_wait)
    script = Script(httpx.RemoteProtocolError, err(503, "x", **{"Retry-After": "2"}),
                    ok({"ids": {"a": "n1"}}), ok({"token": "t", "expiresAt": 5000}),
                    ok({"s": 1}, 200))
    async with AsyncPublisher("http://tocsin.test", "k" * 20,
                              transport=httpx.MockTransport(script)) as pub:
        assert (await pub.publish(["a"], "Hi")).ids == {"a": "n1"}
        assert await pub.token("a") == "t"
        assert await pub.stats() == {"s": 1}
    assert len({b["idempotencyKey"] for b in script.bodies()[:3]}) == 1
    assert waited[1] == 2.0
