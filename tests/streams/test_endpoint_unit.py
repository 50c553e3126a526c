"""The SSE endpoint (``EventStream``) driven as plain ASGI: a fake send/receive, the fake
store and a hub on a memory broker. No server process, no sockets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from tests.support.fakes import FakeStore
from tests.support.wait import eventually
from tocsin.broker import broker_from_url
from tocsin.events import StreamEvent
from tocsin.ids import Position, event_id
from tocsin.sse import frame
from tocsin.streams import follow
from tocsin.streams.endpoint import EventStream
from tocsin.streams.hub import Hub

STREAM = "u:alice"



class Client:
    """The ASGI server side of one request: records what the endpoint sends."""

    def __init__(self, hub: Hub, last: Position | None, retry_ms: int = 1500) -> None:
        self.messages: list[dict[str, Any]] = []
        self.body = b""
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        response = EventStream(hub, STREAM, last, retry_ms)
        self.task = asyncio.ensure_future(
            response({"type": "http", "method": "GET"}, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        return await self._inbox.get()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(dict(message))
        self.body += message.get("body", b"")

    async def disconnect(self) -> None:
        self._inbox.put_nowait({"type": "http.disconnect"})
        await asyncio.wait_for(self.task, 2)

    async def body_is(self, expected: bytes) -> None:
        """Wait for ``expected`` and check nothing else came (a few loop turns later)."""
        await eventually(lambda: len(self.body) >= len(expected))
        for _ in range(10):
            await asyncio.sleep(0)
        assert self.body == expected


def frames(events: list[StreamEvent]) -> bytes:
    return b"".join(e.frame for e in events)


def reset_frame(epoch: str, seq: int) -> bytes:
    position = event_id(epoch, seq)
    return frame("reset", f'{{"lastEventId":"{position}"}}', position)


RETRY = b"retry: 1500\n\n"


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
async def hub(store: FakeStore) -> AsyncIterator[Hub]:
    h = Hub(store.as_store(), broker_from_url(f"memory://ep-{uuid.uuid4().hex[:10]}"),
            heartbeat_s=60.0, degraded_poll_s=60.0)
    await h.start()
    await eventually(lambda: not h._sweep_needed.is_set())
    await asyncio.sleep(0.01)
    yield h
    await asyncio.sleep(0.01)  # see test_hub.py::test_stop_returns_right_after_a_sweep_request
    await asyncio.wait_for(h.stop(), 2)


async def test_headers_then_retry_frame_first(hub: Hub, store: FakeStore) -> None:
    store.append(STREAM, 2)
    c = Client(hub, None)
    await c.body_is(RETRY)
    start = c.messages[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert c.messages[1] == {"type": "http.response.body", "body": RETRY, "more_body": True}
    await c.disconnect()
    assert c.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert hub.connections == 0 and hub.streams == {}


async def test_resume_replays_exactly_the_rest_then_goes_live(
    hub: Hub, store: FakeStore
) -> None:
    evs = store.append(STREAM, 5)
    epoch = evs[0].epoch
    c = Client(hub, Position(epoch, 2))
    await c.body_is(RETRY + frames(evs[2:]))
    # One read of exactly the rest (from the client's position, not the start).
    reads = [arg for m, arg in store.calls if m == "events_after"]
    assert reads == [(STREAM, 2, follow.REPLAY_FIRST)]
    new = store.append(STREAM, 1)
    await hub.fan_out(new)
    await c.body_is(RETRY + frames(evs[2:] + new))
    await c.disconnect()


async def test_resume_at_the_oldest_kept_position_replays_without_reset(
    hub: Hub, store: FakeStore
) -> None:
    evs = store.append(STREAM, 5)
    store.prune(STREAM, 3)
    c = Client(hub, Position(evs[0].epoch, 3))  # 4 and 5 are still kept
    await c.body_is(RETRY + frames(evs[3:]))
    await c.disconnect()


async def test_live_only_client_gets_only_new_events(hub: Hub, store: FakeStore) -> None:
    old = store.append(STREAM, 3)
    c = Client(hub, None)
    await c.body_is(RETRY)
    new = store.append(STREAM, 1)
    await hub.fan_out(new)
    await c.body_is(RETRY + frames(new))
    assert old[-1].frame not in c.body
    await c.disconnect()


async def test_a_client_at_the_known_head_starts_without_a_store_read(
    hub: Hub, store: FakeStore
) -> None:
    evs = store.append(STREAM, 3)
    await hub.fan_out(evs)  # the hub has seen the head and the broker is up
    calls = len(store.calls)
    c = Client(hub, Position(evs[0].epoch, 3))
    await c.body_is(RETRY)
    assert store.calls[calls:] == []
    new = store.append(STREAM, 1)
    await hub.fan_out(new)
    await c.body_is(RETRY + frames(new))
    await c.disconnect()


@pytest.mark.parametrize("case", ["other epoch", "never issued", "pruned", "bare seq"])
async def test_a_position_that_cannot_continue_gets_one_reset_to_the_head(
    hub: Hub, store: FakeStore, case: str
) -> None:
    evs = store.append(STREAM, 5)
    epoch = evs[0].epoch
    last = {
        "other epoch": Position("zz" + epoch[2:], 2),
        "never issued": Position(epoch, 6),
        "pruned": Position(epoch, 2),
        "bare seq": Position("", 2),  # an id from before epochs existed
    }[case]
    if case == "pruned":
        store.prune(STREAM, 3)
    c = Client(hub, last)
    await c.body_is(RETRY + reset_frame(epoch, 5))
    # Decided from the stream's bounds alone: nothing was read to find out.
    assert [m for m, _ in store.calls] == ["stream_bounds"]
    new = store.append(STREAM, 1)
    await hub.fan_out(new)  # and it carries on live from the head
    await c.body_is(RETRY + reset_frame(epoch, 5) + frames(new))
    await c.disconnect()


async def test_database_replaced_while_connected_sends_reset(
    hub: Hub, store: FakeStore
) -> None:
    evs = store.append(STREAM, 5)
    c = Client(hub, Position(evs[0].epoch, 5))
    await c.body_is(RETRY)
    store.replace()
    fresh = store.append(STREAM, 2)
    new_epoch = fresh[0].epoch
    await hub.sweep()
    expected = RETRY + reset_frame(new_epoch, 2)
    await c.body_is(expected)
    more = store.append(STREAM, 1)
    await hub.fan_out(more)
    await c.body_is(expected + frames(more))
    await c.disconnect()


async def test_database_replaced_and_stream_not_written_again_resets_to_zero(
    hub: Hub, store: FakeStore
) -> None:
    evs = store.append(STREAM, 5)
    c = Client(hub, Position(evs[0].epoch, 5))
    await c.body_is(RETRY)
    store.replace()
    await hub.sweep()
    await c.body_is(RETRY + reset_frame("", 0))
    first = store.append(STREAM, 1)  # the stream's first event in the new database
    await hub.fan_out(first)
    await c.body_is(RETRY + reset_frame("", 0) + frames(first))
    await c.disconnect()


async def test_store_down_at_connect_still_answers_then_replays(
    hub: Hub, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "STORE_RETRY_S", 0.01)
    evs = store.append(STREAM, 4)
    store.down = True
    c = Client(hub, Position(evs[0].epoch, 1))
    await c.body_is(RETRY)  # connected at once, position not settled yet
    await asyncio.sleep(0.05)
    assert c.body == RETRY
    store.down = False
    await c.body_is(RETRY + frames(evs[1:]))
    await c.disconnect()


async def test_hub_shutdown_ends_the_stream(hub: Hub, store: FakeStore) -> None:
    evs = store.append(STREAM, 1)
    c = Client(hub, Position(evs[0].epoch, 1))
    await c.body_is(RETRY)
    hub.close_streams()
    await asyncio.wait_for(c.task, 2)
    assert c.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert hub.connections == 0


async def test_live_only_client_gets_events_published_before_its_position_settled(
    hub: Hub, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "STORE_RETRY_S", 0.01)
    store.append(STREAM, 3)
    store.down = True  # the position cannot be settled yet
    c = Client(hub, None)
    await c.body_is(RETRY)
    racing = store.append(STREAM, 1)  # committed and fanned out meanwhile
    await hub.fan_out(racing)
    store.down = False
    await c.body_is(RETRY + frames(racing))
    await c.disconnect()


async def test_news_older_than_the_connection_never_resets_it(
    hub: Hub, store: FakeStore
) -> None:
    """A sweep's snapshot can be older than what the connection already has: read
    before the stream's first event, it says "no such stream" (position "0", no
    epoch), yet the event arrived meanwhile. Only the store's bounds, read afterwards,
    may decide on a reset — here they say the position is fine. (The benchmark's
    reconnect storm showed such false resets as duplicated events before this.)"""
    c = Client(hub, None)
    await c.body_is(RETRY)
    first = store.append(STREAM, 1)
    await hub.fan_out(first)
    await c.body_is(RETRY + frames(first))
    for conn in hub.streams[STREAM]:
        conn.nudge(0, "")  # the stale snapshot
    await asyncio.sleep(0.05)
    assert c.body == RETRY + frames(first)  # no reset
    more = store.append(STREAM, 2)
    await hub.fan_out(more)
    await c.body_is(RETRY + frames(first) + frames(more))
    await c.disconnect()


class FakeTransport:
    """What ``EventStream.open_parked`` and a parked stream use of a socket."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.data += data

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def chunks(data: bytes) -> bytes:
    """The payloads of an HTTP/1.1 chunked body, joined (the head before it dropped)."""
    body, out = data.partition(b"\r\n\r\n")[2], b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        out, body = out + rest[:n], rest[n + 2:]
    return out


@pytest.mark.parametrize("case", ["behind", "pruned"])
async def test_opened_parked_behind_the_head_replays_or_resets_as_the_asgi_path(
    hub: Hub, store: FakeStore, case: str
) -> None:
    evs = store.append(STREAM, 5)
    await hub.fan_out(evs)  # the hub vouches for the head (5)
    if case == "pruned":
        store.prune(STREAM, 3)
    epoch = evs[0].epoch
    t = FakeTransport()
    assert EventStream(hub, STREAM, Position(epoch, 2), 1500).open_parked(t, [])
    expected = RETRY + (frames(evs[2:]) if case == "behind" else reset_frame(epoch, 5))
    await eventually(lambda: len(chunks(t.data)) >= len(expected))
    assert chunks(t.data) == expected
    new = store.append(STREAM, 1)
    await hub.fan_out(new)  # then live from there, once
    assert chunks(t.data) == expected + frames(new)
    t.protocol.connection_lost(None)
    await eventually(lambda: hub.connections == 0)


async def test_a_position_past_the_known_head_is_left_to_the_asgi_path(
    hub: Hub, store: FakeStore
) -> None:
    evs = store.append(STREAM, 3)
    await hub.fan_out(evs)
    t = FakeTransport()
    for last in (Position(evs[0].epoch, 4), Position("zz" + evs[0].epoch[2:], 2)):
        assert not EventStream(hub, STREAM, last, 1500).open_parked(t, [])
    assert t.data == b"" and hub.connections == 0
