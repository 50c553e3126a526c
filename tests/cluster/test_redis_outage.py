"""Redis goes away in the middle of a publish stream. Nodes keep accepting publishes
(201 means stored), ``/readyz`` says the broker is down, and once Redis is back every
subscriber has every event in order, on the connection it already had."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.broker.netproxy import TcpProxy
from tests.broker.redis_server import PrivateRedis
from tests.cluster.helpers import (
    FailoverReader,
    assert_exact_sequence,
    channel_url,
    publish_note,
    publish_topic,
    publisher,
    reader,
    readyz,
    start_nodes,
)
from tests.support.server import ServerProcess
from tests.support.wait import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

INBOX = "/api/notifications/stream"
FEED = "/api/topics/ops/stream"
FAST = {"ping_interval": "0.5s", "ping_timeout": "0.5s", "backoff_max": "0.5s"}


class Load:
    """Publishers through every node, alternating inbox and topic, until stopped."""

    def __init__(self, nodes: list[ServerProcess], per_node: int = 2) -> None:
        self.nodes = nodes
        self.per_node = per_node
        self.notes: list[str] = []
        self.topic: list[str] = []
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _one(self, node: ServerProcess, k: int) -> None:
        async with publisher(node.url) as p:
            j = 0
            while not self.stop.is_set():
                if j % 2 == 0:
                    self.notes.append(await publish_note(p, "alice", f"{node.port}/{k}/{j}"))
                else:
                    self.topic.append(await publish_topic(p, "ops", f"{node.port}/{k}/{j}"))
                j += 1
                await asyncio.sleep(0.02)

    def start(self) -> Load:
        self._tasks = [asyncio.create_task(self._one(n, k))
                       for n in self.nodes for k in range(self.per_node)]
        return self

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self._tasks)  # re-raises a failed publish (non-201)


async def readers_on(nodes: list[ServerProcess]) -> tuple[list[FailoverReader],
                                                         list[FailoverReader]]:
    inbox = [await reader(nodes, INBOX, "alice", first=i) for i in range(len(nodes))]
    feed = [await reader(nodes, FEED, f"w{i}", ["ops"], first=i) for i in range(len(nodes))]
    return inbox, feed


async def check_everyone_has_everything(load: Load, inbox: list[FailoverReader],
                                        feed: list[FailoverReader], within: float) -> None:
    for readers, acked in ((inbox, load.notes), (feed, load.topic)):
        for rd in readers:
            events = await rd.wait_for(len(acked), timeout=within)
            assert_exact_sequence(events, expected_ids=range(1, len(acked) + 1))
            assert [(e.id, e.data) for e in events] == \
                [(e.id, e.data) for e in readers[0].events]
            assert {e.data["id"] for e in events} == set(acked)
            assert rd.connects == 1, f"the client had to reconnect: {rd.errors}"


async def test_redis_restarted_mid_stream(tmp_path: Path, pg_url: str,
                                          private_redis: PrivateRedis,
                                          nodes_to_stop: list[ServerProcess]) -> None:
    broker = channel_url(private_redis.url, **FAST)
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=broker)
    nodes_to_stop.extend(nodes)
    inbox, feed = await readers_on(nodes)
    load = Load(nodes).start()
    await asyncio.sleep(0.7)

    private_redis.stop()
    down_at = time.monotonic()
    for n in nodes:
        await eventually(lambda n=n: _broker_state(n, "down"), 3, "readyz to report it")
        code, body = await readyz(n)
        assert code == 200 and body["status"] == "degraded", body
    before = len(load.notes) + len(load.topic)
    await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - down_at)))
    assert len(load.notes) + len(load.topic) > before, "publishes stalled while Redis was down"
    # Still down: what was stored meanwhile reaches every subscriber from the store.
    marks = (len(load.notes), len(load.topic))
    for rd in inbox:
        await rd.wait_for(marks[0], timeout=3)
    for rd in feed:
        await rd.wait_for(marks[1], timeout=3)
    assert not await _broker_state(nodes[0], "ok"), "Redis came back too early for the check"

    private_redis.start()
    for n in nodes:
        await eventually(lambda n=n: _broker_state(n, "ok"), 5, "the broker to come back")
    await asyncio.sleep(0.7)
    await load.finish()
    await check_everyone_has_everything(load, inbox, feed, within=10)
    for rd in inbox + feed:
        await rd.close()


async def test_one_node_partitioned_from_redis(tmp_path: Path, pg_url: str,
                                               private_redis: PrivateRedis,
                                               nodes_to_stop: list[ServerProcess]) -> None:
    """Node 1's link to Redis silently drops everything (no reset) while node 2 stays
    healthy and does not poll. Afterwards node 2's clients also have what node 1 stored
    during the partition, and vice versa."""
    with TcpProxy("127.0.0.1", private_redis.port) as proxy:
        direct = channel_url(private_redis.url, **FAST)
        via_proxy = direct.replace(f":{private_redis.port}/", f":{proxy.port}/")
        nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=[via_proxy, direct])
        nodes_to_stop.extend(nodes)
        inbox, feed = await readers_on(nodes)
        load = Load(nodes).start()
        await asyncio.sleep(0.5)
        proxy.freeze()
        await eventually(lambda: _broker_state(nodes[0], "down"), 4, "node 1 degraded")
        assert await _broker_state(nodes[1], "ok")
        # While partitioned, node 1's clients still get node 2's events (from the store).
        mark = len(load.notes)
        await asyncio.sleep(1.5)
        await inbox[0].wait_for(mark, timeout=3)
        proxy.restore()
        await eventually(lambda: _broker_state(nodes[0], "ok"), 5, "node 1 back")
        await asyncio.sleep(0.5)
        await load.finish()
        await check_everyone_has_everything(load, inbox, feed, within=10)
        for rd in inbox + feed:
            await rd.close()


async def _broker_state(node: ServerProcess, state: str) -> bool:
    _, body = await readyz(node)
    return bool(body.get("broker") == state)
