"""The node's fan-out hub in-process: memory brokers as nodes, a fake store, no sockets."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.support.fakes import FakeStore, RecordingBroker
from tests.support.wait import eventually
from tocsin.broker import broker_from_url
from tocsin.broker.base import Broker
from tocsin.events import StreamEvent, decode_batch
from tocsin.sse import PING
from tocsin.streams.connection import Connection
from tocsin.streams.hub import BROKER_BATCH, LAG_SAMPLE_EVERY, Hub

MakeHub = Callable[..., Awaitable[Hub]]

QUIET = 60.0
"""A poll interval long enough that a hub never sweeps on its own during a test."""



async def settle() -> None:
    """Let broker messages (delivered on later loop turns) and woken tasks run."""
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def channel() -> str:
    return f"memory://hub-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
async def make_hub(store: FakeStore, channel: str) -> AsyncIterator[MakeHub]:
    hubs: list[Hub] = []

    async def make(broker: Broker | None = None, *, start: bool = True, **kw: Any) -> Hub:
        kw.setdefault("heartbeat_s", QUIET)
        kw.setdefault("degraded_poll_s", QUIET)
        hub = Hub(store.as_store(), broker or broker_from_url(channel), **kw)
        hubs.append(hub)
        if start:
            await hub.start()
            await eventually(lambda: not hub._sweep_needed.is_set())  # the start-up sweep ran
            await settle()
        return hub

    yield make
    for hub in hubs:
        await asyncio.wait_for(hub.stop(), 2)


def live(hub: Hub, stream: str, at: int, epoch: str) -> Connection:
    """A connection registered on ``hub``, positioned after ``at`` and caught up."""
    c = Connection(stream)
    hub.register(c)
    c.start_at(at, at, epoch)
    return c


def frames(events: list[StreamEvent]) -> bytes:
    return b"".join(e.frame for e in events)


class CountingConnection(Connection):
    """Counts every event the hub offers it (duplicates included)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.offered: list[int] = []

    def offer(self, event: StreamEvent) -> None:
        self.offered.append(event.seq)
        super().offer(event)


# -- fan-out ------------------------------------------------------------------------------
async def test_fan_out_reaches_local_connections_at_once_and_other_nodes_via_broker(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    rec = RecordingBroker(channel)
    a = await make_hub(rec)
    b = await make_hub()
    evs = store.append("u:x", 3)
    epoch = evs[0].epoch
    a1, a2 = live(a, "u:x", 0, epoch), live(a, "u:x", 0, epoch)
    other = live(a, "u:y", 0, epoch)
    b1 = live(b, "u:x", 0, epoch)

    await a.fan_out(evs)
    # Local connections have it before fan_out returns (no broker round trip).
    assert a1.take() == frames(evs) and a2.take() == frames(evs)
    assert b1.outbox == []
    await settle()
    assert b1.take() == frames(evs) and b1.last_seq == 3 and not b1.fetching
    assert other.outbox == [] and other.last_seq == 0
    # One broker message for the batch, carrying all three events and the sender's id.
    assert len(rec.published) == 1
    node, sent = decode_batch(rec.published[0])
    assert node == a.node_id and [(e.stream, e.seq, e.epoch) for e in sent] == [
        ("u:x", 1, epoch), ("u:x", 2, epoch), ("u:x", 3, epoch)]


async def test_one_broker_message_per_batch_of_broker_batch_events(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    rec = RecordingBroker(channel)
    a = await make_hub(rec)
    b = await make_hub()
    # A 1,200-recipient send: one event in each of 1,200 streams.
    evs = [e for i in range(2 * BROKER_BATCH + 200) for e in store.append(f"u:{i}")]
    conns = [live(b, e.stream, 0, e.epoch) for e in evs]
    await a.fan_out(evs)
    await settle()
    assert [len(decode_batch(m)[1]) for m in rec.published] == [BROKER_BATCH, BROKER_BATCH, 200]
    assert all(c.last_seq == 1 and c.take() == e.frame for c, e in zip(conns, evs, strict=True))
    await a.fan_out([])
    assert len(rec.published) == 3  # nothing to announce: no message


async def test_own_broker_message_is_not_delivered_again(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    rec = RecordingBroker(channel)
    a = await make_hub(rec)
    b = await make_hub()
    evs = store.append("u:x", 2)
    mine, theirs = CountingConnection("u:x"), CountingConnection("u:x")
    a.register(mine)
    b.register(theirs)
    mine.start_at(0, 0, evs[0].epoch)
    theirs.start_at(0, 0, evs[0].epoch)
    await a.fan_out(evs)
    await settle()
    assert len(rec.published) == 1  # the message did go round (it reached b)
    assert mine.offered == [1, 2] and theirs.offered == [1, 2]


# -- the head cache -----------------------------------------------------------------------
async def test_known_head_only_while_broker_up_and_cleared_when_it_goes_down(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    rec = RecordingBroker(channel)
    a = await make_hub(rec, start=False)
    evs = store.append("u:x", 4)
    epoch = evs[0].epoch
    a.deliver(evs)
    assert a.known_head("u:x") is None  # not started: the broker was never up
    await a.start()
    await a.fan_out(store.append("u:x"))
    assert a.known_head("u:x") == (5, epoch)
    assert a.known_head("u:other") is None

    rec.go_down()
    assert a.known_head("u:x") is None
    assert a.heads == {}  # cleared, not merely hidden
    rec.come_up()
    assert a.known_head("u:x") is None  # what it knew before the outage is gone
    await a.fan_out(store.append("u:x"))
    assert a.known_head("u:x") == (6, epoch)


async def test_known_head_not_trusted_after_a_missed_publish_until_sweep_request_sent(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    rec = RecordingBroker(channel)
    # A healthy broker: the catch-up loop sleeps 10 s, so only the failure wakes it.
    a = await make_hub(rec, degraded_poll_s=1.0)
    evs = store.append("u:x", 2)
    rec.fail_publishes = 1  # one publish fails; the broker still reports up
    await a.fan_out(evs)
    assert a.broker_up and a.known_head("u:x") is None
    await eventually(lambda: rec.sweep_requests(), within=0.5)
    assert a.known_head("u:x") == (2, evs[0].epoch)


async def test_store_head_never_lowers_the_cache_unless_the_epoch_changed(
    make_hub: MakeHub, store: FakeStore
) -> None:
    a = await make_hub()
    a.deliver(store.append("u:x", 5))
    epoch = store.epoch_of("u:x")
    a.note_head("u:x", 3, epoch)  # an older read
    assert a.known_head("u:x") == (5, epoch)
    a.note_head("u:x", 7, epoch)
    assert a.known_head("u:x") == (7, epoch)
    a.note_head("u:x", 1, "other")  # the database was replaced: the store is the truth
    assert a.known_head("u:x") == (1, "other")


# -- broker failures ----------------------------------------------------------------------
async def test_failed_publish_sweeps_and_asks_the_other_node_to_sweep_once_back(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    rec = RecordingBroker(channel)
    a = await make_hub(rec, degraded_poll_s=0.02)
    b = await make_hub()  # polls only every QUIET * 10: it sweeps only when asked
    x = store.append("u:x", 1)
    epoch = x[0].epoch
    b_lagging = live(b, "u:x", 1, epoch)
    b_current = live(b, "u:z", 0, "")  # a stream nobody wrote: nothing to catch up
    # Another stream a's own connection follows, written without a fan-out (a node
    # that died before announcing it): only a sweep of a's streams can reveal it.
    y = store.append("u:y", 1)
    a_lagging = live(a, "u:y", 1, y[0].epoch)
    store.append("u:y", 2)

    rec.go_down()
    evs = store.append("u:x", 2)
    await a.fan_out(evs)
    assert rec.failed and rec.published == []
    # While down, a polls the store for its local streams.
    await eventually(lambda: a_lagging.fetching)
    assert a_lagging.highest == 3 and a_lagging.last_seq == 1
    assert rec.sweep_requests() == []  # nobody to tell yet
    assert not b_lagging.fetching

    rec.come_up()
    await eventually(lambda: b_lagging.fetching)
    assert b_lagging.highest == 3 and b_lagging.last_seq == 1 and b_lagging.outbox == []
    assert not b_current.fetching and not b_current.stale
    await asyncio.sleep(0.1)  # several more of a's poll rounds
    assert len(rec.sweep_requests()) == 1
    assert rec.sweep_requests()[0] == b'{"sweep":"%s"}' % a.node_id.encode()


async def test_a_sweep_request_from_another_node_makes_this_one_sweep(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    a = await make_hub()
    b = await make_hub()
    evs = store.append("u:x", 1)
    c = live(b, "u:x", 1, evs[0].epoch)
    store.append("u:x", 1)
    calls = len(store.calls)
    await a.broker.publish(b'{"sweep":"%s"}' % a.node_id.encode())
    await eventually(lambda: c.fetching)
    assert c.highest == 2
    assert store.calls[calls:] == [("heads", ("u:x",))]  # one batched read, b's streams only


async def test_malformed_broker_message_is_logged_and_ignored(
    make_hub: MakeHub, store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    a = await make_hub()
    b = await make_hub()
    evs = store.append("u:x", 1)
    c = live(b, "u:x", 0, evs[0].epoch)
    with caplog.at_level(logging.WARNING, logger="tocsin.hub"):
        await a.broker.publish(b'{"n": "x", "e": [[1]]}')
        await a.broker.publish(b"not json")
        await a.fan_out(evs)
        await settle()
    assert c.take() == evs[0].frame  # the hub kept going
    warned = [r.getMessage() for r in caplog.records if r.name == "tocsin.hub"]
    # Each malformed message is reported once by each of the two nodes.
    assert warned == [
        "ignoring a malformed broker message (22 bytes)",
        "ignoring a malformed broker message (22 bytes)",
        "ignoring a malformed broker message (8 bytes)",
        "ignoring a malformed broker message (8 bytes)",
    ]


# -- sweeping -----------------------------------------------------------------------------
async def test_sweep_nudges_to_the_store_head_and_marks_lost_positions_stale(
    make_hub: MakeHub, store: FakeStore
) -> None:
    a = await make_hub()
    behind_evs = store.append("u:behind", 5)
    at_head_evs = store.append("u:athead", 2)
    gone_evs = store.append("u:gone", 3)
    moved_evs = store.append("u:moved", 4)
    behind = live(a, "u:behind", 2, behind_evs[0].epoch)
    at_head = live(a, "u:athead", 2, at_head_evs[0].epoch)
    gone = live(a, "u:gone", 3, gone_evs[0].epoch)
    moved = live(a, "u:moved", 4, moved_evs[0].epoch)
    fresh = live(a, "u:new", 0, "")  # its stream was never written

    store.replace()
    new_behind = store.append("u:behind", 5, epoch=behind_evs[0].epoch)  # same as before
    store.append("u:athead", 2, epoch=at_head_evs[0].epoch)
    store.append("u:moved", 1)  # written again in the new database: a new epoch
    assert new_behind[-1].seq == 5
    calls = len(store.calls)
    await a.sweep()

    assert behind.fetching and behind.highest == 5 and behind.last_seq == 2
    assert not behind.stale
    assert not at_head.fetching and not at_head.stale
    assert gone.stale and gone.last_seq == 3
    assert moved.stale
    assert not fresh.stale and not fresh.fetching
    assert [m for m, _ in store.calls[calls:]] == ["heads"]  # one batched query
    keys = store.calls[-1][1]
    assert isinstance(keys, tuple)
    assert sorted(keys) == ["u:athead", "u:behind", "u:gone", "u:moved", "u:new"]
    assert a.known_head("u:moved") == (1, store.epoch_of("u:moved"))


async def test_sweep_without_local_streams_does_not_touch_the_store(
    make_hub: MakeHub, store: FakeStore
) -> None:
    a = await make_hub()
    calls = len(store.calls)
    await a.sweep()
    assert store.calls[calls:] == []


async def test_catch_up_survives_a_store_outage(
    make_hub: MakeHub, store: FakeStore, channel: str
) -> None:
    rec = RecordingBroker(channel)
    a = await make_hub(rec, degraded_poll_s=0.01)
    evs = store.append("u:x", 1)
    c = live(a, "u:x", 1, evs[0].epoch)
    store.down = True
    rec.go_down()
    store.append("u:x", 1)
    await asyncio.sleep(0.05)  # several failed rounds
    assert not c.fetching
    store.down = False
    await eventually(lambda: c.fetching)
    assert c.highest == 2


# -- heartbeat and shutdown ---------------------------------------------------------------
async def test_heartbeat_pings_only_idle_connections(
    make_hub: MakeHub, store: FakeStore
) -> None:
    a = await make_hub(heartbeat_s=0.01)
    evs = store.append("u:x", 1)
    idle = live(a, "u:x", 1, evs[0].epoch)
    busy = live(a, "u:x", 0, evs[0].epoch)
    busy.offer(evs[0])
    await asyncio.sleep(0.06)  # several beats
    assert idle.outbox == [PING]  # once: after the first ping it is no longer idle
    assert busy.outbox == [evs[0].frame]
    idle.take()
    await eventually(lambda: idle.outbox)
    assert idle.outbox == [PING]


async def test_close_streams_closes_every_connection_and_later_registrations(
    make_hub: MakeHub, store: FakeStore
) -> None:
    a = await make_hub()
    conns = [live(a, s, 0, "") for s in ("u:a", "u:a", "u:b")]
    assert not any(c.closed for c in conns)
    a.close_streams()
    assert all(c.closed for c in conns)
    late = Connection("u:c")
    a.register(late)
    assert late.closed


async def test_unregister_forgets_the_connection(make_hub: MakeHub, store: FakeStore) -> None:
    a = await make_hub()
    c1, c2 = live(a, "u:a", 0, ""), live(a, "u:a", 0, "")
    assert a.connections == 2
    a.unregister(c1)
    a.unregister(c1)  # twice is harmless
    assert a.connections == 1 and a.streams == {"u:a": {c2}}
    a.unregister(c2)
    assert a.connections == 0 and a.streams == {}


async def test_stop_returns_right_after_a_sweep_request(make_hub: MakeHub) -> None:
    a = await make_hub()
    a._on_state(True)  # the broker reconnects just as the node is told to stop
    stopping = asyncio.ensure_future(a.stop())
    done, _ = await asyncio.wait([stopping], timeout=0.3)
    if not done:  # clean up: a second cancel reaches the loop's next wait
        for t in a._tasks:
            t.cancel()
        await stopping
    assert done


async def test_a_signal_is_framed_once_per_connection_kind(
        make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    import tocsin.streams.hub as hub_module
    from tocsin.streams.follow import JsonConnection

    hub = await make_hub(start=False)
    stream = "t:room"
    sse = [Connection(stream) for _ in range(3)]
    ws = [JsonConnection(stream) for _ in range(3)]
    quiet = [Connection(stream), JsonConnection(stream)]  # did not ask for signals
    for c in (*sse, *ws):
        hub.register(c, signals=True)
        c.start_at(0, 0, "e")
    for c in quiet:
        hub.register(c)
        c.start_at(0, 0, "e")
    calls: list[bool] = []
    real = hub_module.signal_frame

    def counting(stream: str, name: str, data: str, json: bool) -> tuple[bytes, bytes | None]:
        calls.append(json)
        return real(stream, name, data, json)

    monkeypatch.setattr(hub_module, "signal_frame", counting)
    hub.signal(stream, "presence", '{"user":"u","state":"active","since":1}')
    assert sorted(calls) == [False, True]
    assert all(c.outbox == [b'event: presence\ndata: {"user":"u","state":"active",'
                            b'"since":1}\n\n'] for c in sse)
    assert all(c.outbox == [b'{"stream":"topic:room","event":"presence","data":'
                            b'{"user":"u","state":"active","since":1}}'] for c in ws)
    assert all(not c.outbox for c in quiet)


async def test_operator_counters_move(make_hub: MakeHub, store: FakeStore, channel: str) -> None:
    """What ``/metrics`` reads of the hub: broker publish failures, sweeps, time spent
    with the broker down, and one delivery lag per ``LAG_SAMPLE_EVERY`` fan-outs (here,
    and on the node that receives the sampled batch)."""
    lags: list[float] = []
    rec = RecordingBroker(channel)
    a = await make_hub(rec, degraded_poll_s=0.05)
    b = await make_hub()
    a.on_lag = b.on_lag = lags.append
    first = store.append("u:x")
    live(a, "u:x", 1, first[0].epoch)
    for _ in range(LAG_SAMPLE_EVERY):
        await a.fan_out(store.append("u:x"))
    await settle()
    assert len(lags) == 2 and all(0 <= lag < 5 for lag in lags)  # a's own, and b's

    assert a.counters.publish_failures == 0
    assert a.degraded_seconds < 1  # up since the start (connecting took no time)
    sweeps = a.counters.sweeps
    rec.go_down()
    await a.fan_out(store.append("u:x"))
    assert a.counters.publish_failures == 1
    await eventually(lambda: a.counters.sweeps >= sweeps + 2, within=2)  # polling
    await asyncio.sleep(0.2)
    rec.come_up()
    down = a.degraded_seconds
    assert down >= 0.2
    await asyncio.sleep(0.1)
    assert a.degraded_seconds == down  # up again: the total stops growing
