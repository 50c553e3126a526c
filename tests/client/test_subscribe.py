"""subscribe() over SSE against real servers: token refresh without loss, reset, errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.client.proxy import DroppingProxy
from tests.support.ids import seq_of
from tests.support.server import ServerProcess
from tocsin.client import Event, Publisher, Status, TocsinAPIError, subscribe


async def collect(stream: Callable[[], object], count: int, timeout: float = 30,
                  skip: tuple[str, ...] = ("presence",)) -> list[Event]:
    """The first ``count`` events (live-only signals such as presence left out)."""
    got: list[Event] = []

    async def run() -> None:
        async for ev in stream():  # type: ignore[attr-defined]
            if ev.event in skip:
                continue
            got.append(ev)
            if len(got) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return got


@pytest.mark.parametrize("path", ["ahead of expiry", "after a 401"])
async def test_token_refresh_loses_and_repeats_nothing(server: ServerProcess, uid: str,
                                                       path: str) -> None:
    """Tokens of 2 s while 12 notifications arrive over ~4 s: the stream ends at each
    expiry, the client asks for a new token (ahead of time, or after the 401 when it
    does not look at the token) and resumes from its last id."""
    calls: list[float] = []

    def fresh_token() -> str:
        calls.append(time.monotonic())
        return server.token(uid, ttl=2)

    skew = 1.0 if path == "ahead of expiry" else -3600.0

    async def publish() -> None:
        with Publisher(server.url, server.api_key) as pub:
            for i in range(12):
                await asyncio.to_thread(pub.publish, [uid], f"n{i}")
                await asyncio.sleep(0.33)

    feeder = asyncio.create_task(publish())
    got = await collect(lambda: subscribe(server.url, fresh_token, last_event_id="0",
                                          refresh_skew=skew), 12)
    await feeder
    assert [seq_of(e.id) for e in got] == list(range(1, 13))
    assert [e.data["title"] for e in got] == [f"n{i}" for i in range(12)]
    assert len(calls) >= 2


async def test_an_async_token_function_for_a_topic(server: ServerProcess, uid: str) -> None:
    calls = 0

    async def fresh_token() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        # exp is whole seconds: 1 to 2 s from now (with ttl=1 it could be a few ms, and
        # a loaded machine then saw the first subscribe refresh it: calls == 2)
        return server.token(uid, [f"{uid}:*"], ttl=2)

    with Publisher(server.url, server.api_key) as pub:
        for i in range(3):
            pub.post_event(f"{uid}:core", f"e{i}")
    got = await collect(lambda: subscribe(server.url, fresh_token, topic=f"{uid}:core",
                                          last_event_id="0"), 3)
    assert [e.event for e in got] == ["activity"] * 3 and calls == 1

    async def later() -> None:
        await asyncio.sleep(2.5)  # past the first token's expiry
        with Publisher(server.url, server.api_key) as pub:
            pub.post_event(f"{uid}:core", "e3")

    task = asyncio.create_task(later())
    more = await collect(lambda: subscribe(server.url, fresh_token, topic=f"{uid}:core",
                                           last_event_id=got[-1].id), 1)
    await task
    assert [seq_of(e.id) for e in more] == [4] and calls >= 2


async def test_a_static_token_that_expires_raises(server: ServerProcess, uid: str) -> None:
    token = server.token(uid, ttl=2)  # exp is whole seconds: 1 to 2 s from now
    start = time.monotonic()
    with pytest.raises(TocsinAPIError) as caught:
        await collect(lambda: subscribe(server.url, token), 1, timeout=20)
    assert caught.value.status == 401 and time.monotonic() - start >= 0.5


async def test_wrong_token_function_raises_after_one_refresh(server: ServerProcess,
                                                             uid: str) -> None:
    calls = 0

    def bad() -> str:
        nonlocal calls
        calls += 1
        return "not-a-token"

    with pytest.raises(TocsinAPIError) as caught:
        await collect(lambda: subscribe(server.url, bad), 1, timeout=20)
    assert caught.value.status == 401 and calls == 2


async def test_reset_is_passed_through_and_moves_the_position(server: ServerProcess,
                                                              uid: str) -> None:
    with Publisher(server.url, server.api_key) as pub:
        pub.publish([uid], "before")

    async def later() -> None:
        await asyncio.sleep(0.5)
        with Publisher(server.url, server.api_key) as pub:
            pub.publish([uid], "after")

    task = asyncio.create_task(later())
    # An id from another epoch (as after the database was replaced).
    got = await collect(lambda: subscribe(server.url, server.token(uid),
                                          last_event_id="zzzz-9"), 2)
    await task
    assert got[0].event == "reset" and got[0].id == got[0].data["lastEventId"]
    assert seq_of(got[0].id) == 1
    assert got[1].event == "notification" and seq_of(got[1].id) == 2


async def test_forbidden_topic_raises(server: ServerProcess, uid: str) -> None:
    with pytest.raises(TocsinAPIError) as caught:
        await collect(lambda: subscribe(server.url, server.token(uid, ["other:*"]),
                                        topic=f"{uid}:x"), 1, timeout=20)
    assert caught.value.status == 403


async def test_token_function_failures_are_retried(server: ServerProcess, uid: str) -> None:
    """The app's token function may fail for a moment (its own backend restarting):
    a connection error from it is retried with backoff, not raised."""
    import httpx

    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise httpx.ConnectError("backend restarting")
        return server.token(uid)

    with Publisher(server.url, server.api_key) as pub:
        pub.publish([uid], "x")
    got = await collect(lambda: subscribe(server.url, flaky, last_event_id="0",
                                          initial_backoff=0.05), 1)
    assert calls == 3 and got[0].data["title"] == "x"



@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_live_only_loses_nothing_published_while_it_reconnects(
        server: ServerProcess, uid: str, transport: str) -> None:
    """``last_event_id=None`` starts with live events, then resumes like any other: a
    notification published while the connection is down arrives after the reconnect.
    Before, a stream that had yielded nothing yet reconnected live-only again and lost
    it (SSE and WebSocket alike)."""
    connected, retrying = asyncio.Event(), asyncio.Event()

    def status(s: Status) -> None:
        (connected if s.state == "connected" else retrying).set()

    got: list[str] = []
    with DroppingProxy(server.port, drop=0) as proxy, \
            Publisher(server.url, server.api_key) as pub:
        async def run() -> None:
            async for ev in subscribe(proxy.url, server.token(uid), on_status=status,
                                      transport="ws" if transport == "ws" else "sse",
                                      initial_backoff=2.0, max_backoff=2.0):
                got.append(ev.data["title"])
                if len(got) == 2:
                    return

        task = asyncio.create_task(run())
        await asyncio.wait_for(connected.wait(), 30)
        connected.clear()
        proxy.cut()
        await asyncio.wait_for(retrying.wait(), 30)
        # Published during the backoff (1 to 2 s), straight to the server.
        await asyncio.to_thread(pub.publish, [uid], "while down")
        await asyncio.wait_for(connected.wait(), 30)
        await asyncio.to_thread(pub.publish, [uid], "after")
        await asyncio.wait({task}, timeout=30)
        task.cancel()
    assert got == ["while down", "after"]
