"""How the Redis broker behaves when Redis fails: it never blocks a publish, it reports
every possible message loss through ``on_state(False)``, it reconnects by itself and
reports ``on_state(True)`` once subscribed again, and it drops (never re-sends) what
it could not publish: messages are opaque to it. Each test runs its own
``redis-server`` (or a proxy to it)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest
import redis

from tests.broker.conftest import Brokers, Recorder, url_for
from tests.broker.netproxy import TcpProxy
from tests.broker.redis_server import PrivateRedis
from tests.support.services import REDIS_URL
from tocsin.broker import BrokerUnavailable
from tocsin.broker.redis import RedisBroker
from tocsin.redis_url import redact

pytestmark = pytest.mark.redis

FAST = {"ping_interval": "0.2s", "ping_timeout": "0.3s", "backoff_max": "0.5s"}
Make = Callable[..., Awaitable[tuple[RedisBroker, Recorder]]]


@pytest.fixture
async def make(brokers: Brokers) -> Make:
    channel = f"fail-{uuid.uuid4().hex[:10]}"

    async def make_(base: str, **opts: str) -> tuple[RedisBroker, Recorder]:
        broker, rec = await brokers.start(url_for("redis", channel, base, **{**FAST, **opts}))
        assert isinstance(broker, RedisBroker)
        return broker, rec

    return make_


async def publish_fails_fast(broker: RedisBroker, message: bytes, within: float) -> None:
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        await broker.publish(message)
    assert time.monotonic() - t0 < within, "publish blocked instead of failing"


def test_url_options_are_read_and_stripped() -> None:
    b = RedisBroker("redis://u:secret@127.0.0.1:6390/3?channel=c1&ping_interval=250ms"
                    "&ping_timeout=1&backoff_max=2s&socket_keepalive=true")
    assert (b.channel, b.ping_interval_s, b.ping_timeout_s, b.backoff_max_s,
            ) == ("c1", 0.25, 1.0, 2.0)
    assert b._conn_kwargs["db"] == 3 and b._conn_kwargs["socket_keepalive"] is True
    assert "channel" not in b._conn_kwargs
    assert redact(b.url).startswith("redis://u:***@127.0.0.1:6390/3?")
    assert RedisBroker("redis://127.0.0.1").channel == "tocsin"
    with pytest.raises(ValueError):
        RedisBroker("redis://127.0.0.1?ping_timeout=0")


async def test_start_with_redis_down_then_up(private_redis: PrivateRedis, make: Make) -> None:
    private_redis.stop()
    t0 = time.monotonic()
    broker, rec = await make(private_redis.url)
    assert time.monotonic() - t0 < 2, "start() must return after the first failed attempt"
    assert not broker.healthy and rec.states == [False]
    await publish_fails_fast(broker, b"x", within=0.05)
    private_redis.start()
    await rec.wait(lambda: rec.states == [False, True], within=3, what="reconnect")
    assert broker.healthy
    await broker.publish(b"after")
    await rec.wait(lambda: rec.messages == [b"after"], what="message after reconnect")


async def test_redis_restart_is_reported_and_recovered(private_redis: PrivateRedis,
                                                       make: Make) -> None:
    (a, rec_a), (b, rec_b) = await make(private_redis.url), await make(private_redis.url)
    await a.publish(b"before")
    await rec_b.wait(lambda: rec_b.messages == [b"before"])
    private_redis.stop()
    for rec in (rec_a, rec_b):
        await rec.wait(lambda rec=rec: rec.states == [True, False], within=2,
                       what="loss reported")
    assert not a.healthy and not b.healthy
    await publish_fails_fast(a, b"during", within=0.05)
    t0 = time.monotonic()
    private_redis.start()
    for rec in (rec_a, rec_b):
        await rec.wait(lambda rec=rec: rec.states == [True, False, True], within=3,
                       what="re-established")
    assert time.monotonic() - t0 < 2, "backoff too slow for a short outage"
    await b.publish(b"after")
    for rec in (rec_a, rec_b):
        await rec.wait(lambda rec=rec: rec.messages[-1:] == [b"after"])
        assert b"during" not in rec.messages  # at-most-once: opaque payloads are dropped


async def test_frozen_redis_is_detected_by_the_watchdog(private_redis: PrivateRedis,
                                                         make: Make) -> None:
    broker, rec = await make(private_redis.url)
    private_redis.freeze()
    try:
        t0 = time.monotonic()
        await rec.wait(lambda: rec.states == [True, False], within=3, what="watchdog")
        # ping_interval 0.2 + ping_timeout 0.3, plus a little scheduling slack
        assert time.monotonic() - t0 < 1.5
        await publish_fails_fast(broker, b"x", within=0.05)
    finally:
        private_redis.thaw()
    await rec.wait(lambda: rec.states[-1:] == [True], within=3, what="recovery")
    await broker.publish(b"thawed")
    await rec.wait(lambda: b"thawed" in rec.messages)


async def test_publish_times_out_instead_of_blocking(private_redis: PrivateRedis,
                                                     make: Make) -> None:
    """Redis freezes between watchdog pings: the publish gives up after ping_timeout."""
    broker, rec = await make(private_redis.url, ping_interval="30s", ping_timeout="0.3s")
    await broker.publish(b"warm")  # a pooled connection exists
    private_redis.freeze()
    try:
        t0 = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            await broker.publish(b"stuck")
        assert time.monotonic() - t0 < 1.0
        # a failed publish counts as a lost subscription: the node will sweep
        assert rec.states[-1] is False and not broker.healthy
    finally:
        private_redis.thaw()
    await rec.wait(lambda: rec.states[-1:] == [True], within=3, what="resubscribed")


async def test_killed_subscription_is_reported(private_redis: PrivateRedis,
                                               make: Make) -> None:
    """Redis cuts a slow subscriber off (client-output-buffer-limit pubsub); simulated
    by CLIENT KILL TYPE pubsub. The node must learn it may have missed messages."""
    broker, rec = await make(private_redis.url)
    reply = private_redis.command("CLIENT", "KILL", "TYPE", "pubsub")
    assert reply.startswith(b":1")
    await rec.wait(lambda: rec.states == [True, False, True], within=3, what="resubscribe")
    assert broker.subscriptions == 2
    await broker.publish(b"ok")
    await rec.wait(lambda: rec.messages == [b"ok"])


async def test_partitioned_node_drops_what_it_could_not_publish(
        private_redis: PrivateRedis, make: Make) -> None:
    """Only node A loses Redis. Its publishes meanwhile fail fast and are dropped (the
    broker is at-most-once and never looks inside messages); what it reports is the
    outage itself, down then up, which is what lets its hub ask every node to sweep
    the store (streams/hub.py; end to end in tests/cluster/test_redis_outage.py)."""
    with TcpProxy("127.0.0.1", private_redis.port) as proxy:
        a, rec_a = await make(proxy.url("redis", "/0"))
        b, rec_b = await make(private_redis.url)
        proxy.cut()
        await rec_a.wait(lambda: rec_a.states == [True, False], within=3)
        for msg in (b'{"n":"A","e":[]}', b"opaque"):
            with pytest.raises(BrokerUnavailable):
                await a.publish(msg)
        assert b.healthy and rec_b.messages == []
        proxy.restore()
        await rec_a.wait(lambda: rec_a.states == [True, False, True], within=3)
        await a.publish(b"after")
        await rec_b.wait(lambda: rec_b.messages == [b"after"], what="live again")
        await asyncio.sleep(0.2)
        assert rec_b.messages == [b"after"]  # nothing re-sent from the outage


async def test_partitioned_node_frozen_link(private_redis: PrivateRedis, make: Make) -> None:
    """A partition without a reset (packets dropped): the watchdog notices it."""
    with TcpProxy("127.0.0.1", private_redis.port) as proxy:
        a, rec_a = await make(proxy.url("redis", "/0"))
        proxy.freeze()
        await rec_a.wait(lambda: rec_a.states == [True, False], within=3, what="watchdog")
        proxy.restore()
        await rec_a.wait(lambda: rec_a.states[-1:] == [True], within=5, what="recovery")
        await a.publish(b"back")
        await rec_a.wait(lambda: rec_a.messages[-1:] == [b"back"])


async def test_close_while_reconnecting_is_prompt(private_redis: PrivateRedis,
                                                  make: Make) -> None:
    broker, rec = await make(private_redis.url)
    private_redis.stop()
    await rec.wait(lambda: rec.states == [True, False])
    t0 = time.monotonic()
    await broker.close()
    assert time.monotonic() - t0 < 1
    assert not broker.healthy
    await publish_fails_fast(broker, b"x", within=0.05)


async def test_a_burst_already_received_is_taken_in_a_few_loop_turns(make: Make) -> None:
    """Messages already in the subscription's socket are dispatched together, not one
    per two event-loop turns: a node busy with its own work otherwise fell seconds
    behind another node's events (``--workers 2``)."""
    broker, rec = await make(REDIS_URL)
    burst = 200
    # published while this loop is blocked, so all of it is waiting in the socket
    sync = redis.Redis.from_url(REDIS_URL)
    try:
        for i in range(burst):
            sync.publish(broker.channel, b"m%d" % i)
    finally:
        sync.close()
    time.sleep(0.3)
    turns = 0
    while len(rec.messages) < burst and turns < 60:
        await asyncio.sleep(0)
        turns += 1
    assert sorted(rec.messages) == sorted(b"m%d" % i for i in range(burst))
    assert turns < 30, f"{turns} loop turns for {burst} buffered messages"
