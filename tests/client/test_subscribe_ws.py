"""subscribe(transport="ws"): against a scripted WebSocket server speaking the /api/ws
contract, and against the real server when it offers /api/ws."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.support.ids import seq_of
from tests.support.server import ServerProcess
from tocsin.client import AuthenticationError, Event, Publisher, TocsinAPIError, subscribe

EVENTS = [{"stream": "inbox", "id": f"ep-{i}", "event": "notification",
           "data": {"title": f"n{i}"}} for i in range(1, 7)]


class FakeWs:
    """Serves EVENTS after ``since``; a token named ``short`` is closed with 4001
    after two events. Records every subscribe message and token."""

    def __init__(self, *, error: dict[str, Any] | None = None,
                 close: int | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        self.error = error
        self.close = close

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        assert "token" not in ws.request.path  # in the first message, never in the URL
        auth = json.loads(await ws.recv())
        assert auth["op"] == "auth"
        token = auth["token"]
        self.tokens.append(token)
        if self.close is not None:
            await ws.close(self.close, "refused")
            return
        op = json.loads(await ws.recv())
        self.requests.append(op)
        if self.error is not None:
            await ws.send(json.dumps({"op": "error", "error": self.error}))
            await ws.close(1000)
            return
        await ws.send(json.dumps({"op": "subscribed", "stream": op["stream"],
                                  "position": "ep-6"}))
        start = seq_of(op["since"]) if "since" in op else 0
        for sent, ev in enumerate(EVENTS[start:]):
            if token.startswith("short") and sent == 2:
                await ws.close(4001, "token expired")
                return
            await ws.send(json.dumps({**ev, "stream": op["stream"]}))
        await ws.wait_closed()


async def run_fake(fake: FakeWs) -> AsyncIterator[str]:
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"


async def take(url: str, token: Any, count: int, **kw: Any) -> list[Event]:
    got: list[Event] = []
    async for ev in subscribe(url, token, transport="ws", **kw):
        got.append(ev)
        if len(got) == count:
            break
    return got


async def test_close_4001_refreshes_the_token_and_resumes_from_the_last_id() -> None:
    fake = FakeWs()
    tokens = iter(["short1", "short2", "long"])
    async for url in run_fake(fake):
        got = await asyncio.wait_for(take(url, lambda: next(tokens), 6, last_event_id="ep-0"),
                                     15)
    assert [e.id for e in got] == [f"ep-{i}" for i in range(1, 7)]
    assert fake.tokens == ["short1", "short2", "long"]
    assert [r.get("since") for r in fake.requests] == ["ep-0", "ep-2", "ep-4"]
    assert {r["stream"] for r in fake.requests} == {"inbox"}


async def test_close_4001_with_a_token_string_raises() -> None:
    async for url in run_fake(FakeWs()):
        with pytest.raises(TocsinAPIError) as caught:
            await asyncio.wait_for(take(url, "short-static", 6), 15)
    assert caught.value.status == 401


async def test_error_frames_and_refusals_raise() -> None:
    async for url in run_fake(FakeWs(error={"code": "forbidden", "message": "no"})):
        with pytest.raises(TocsinAPIError) as caught:
            await asyncio.wait_for(take(url, "t", 1, topic="x"), 15)
    assert caught.value.status == 403 and caught.value.code == "forbidden"
    async for url in run_fake(FakeWs(close=4003)):
        with pytest.raises(TocsinAPIError) as caught:
            await asyncio.wait_for(take(url, "t", 1), 15)
    # A refused token: what an SSE connect answers for it (tests/client/test_sdk.py).
    assert isinstance(caught.value, AuthenticationError)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")


async def test_topic_subscription_names_the_stream() -> None:
    fake = FakeWs()
    async for url in run_fake(fake):
        await asyncio.wait_for(take(url, "long", 1, topic="team:core"), 15)
    assert fake.requests[0] == {"op": "subscribe", "stream": "topic:team:core"}


async def test_real_server_over_websocket(server: ServerProcess, uid: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    try:
        async with connect(f"ws://127.0.0.1:{server.port}/api/ws?token={server.token(uid)}"):
            pass
    except InvalidStatus as exc:
        pytest.skip(f"this server does not offer /api/ws yet "
                    f"(HTTP {exc.response.status_code} on the upgrade)")
    with Publisher(server.url, server.api_key) as pub:
        for i in range(3):
            pub.publish([uid], f"n{i}")
    calls = 0

    def fresh() -> str:
        nonlocal calls
        calls += 1
        return server.token(uid, ttl=2)

    async def later() -> None:
        await asyncio.sleep(2.5)  # past the first token's expiry
        with Publisher(server.url, server.api_key) as pub:
            for i in range(3, 5):
                pub.publish([uid], f"n{i}")

    task = asyncio.create_task(later())
    got = await asyncio.wait_for(take(server.url, fresh, 5, last_event_id="0"), 30)
    await task
    assert [e.data["title"] for e in got] == [f"n{i}" for i in range(5)]
    assert [seq_of(e.id) for e in got] == [1, 2, 3, 4, 5] and calls >= 2
