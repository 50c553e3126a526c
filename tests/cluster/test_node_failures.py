"""A node stops under load, gracefully (SIGTERM) or not (SIGKILL). Clients fail over
to the other node as they would behind a load balancer; publishers retry on the other
node with the same idempotency key. Nothing acknowledged (201) is lost, and every
subscriber still sees each stream exactly once, in order."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.broker.netproxy import TcpProxy
from tests.broker.redis_server import PrivateRedis
from tests.cluster.helpers import (
    FailoverReader,
    assert_exact_sequence,
    channel_url,
    publish_note,
    publisher,
    reader,
    readyz,
    start_nodes,
)
from tests.support.server import API_KEY, ServerProcess, mint
from tests.support.services import REDIS_URL
from tests.support.wait import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

INBOX = "/api/notifications/stream"
FEED = "/api/topics/ops/stream"


class FailoverPublisher:
    """Publishes through a preferred node and, on a connection error or a 5xx, retries
    the same request (same idempotency key) on the next node. Records what was
    acknowledged and what went wrong on the way."""

    def __init__(self, nodes: list[ServerProcess]) -> None:
        self.nodes = nodes
        self.acked_notes: dict[str, str] = {}  # idempotency key -> notification id
        self.acked_topic: set[str] = set()
        self.failures: list[str] = []
        self._seq = itertools.count()

    async def note(self, first: int) -> None:
        key = f"k{next(self._seq)}"
        body = {"recipients": ["alice"], "type": "t", "title": key, "idempotencyKey": key}
        r = await self._post(first, "/api/notifications", body)
        self.acked_notes[key] = r.json()["ids"]["alice"]

    async def topic(self, first: int) -> None:
        # topic events have no idempotency key: a retry after an unknown outcome
        # may store the event twice, so only acknowledged ones are counted.
        r = await self._post(first, "/api/topics/ops/events",
                             {"type": "t", "title": f"t{next(self._seq)}"})
        self.acked_topic.add(r.json()["id"])

    async def _post(self, first: int, path: str, body: dict[str, object]) -> httpx.Response:
        for attempt in range(20):
            node = self.nodes[(first + attempt) % len(self.nodes)]
            try:
                # a fresh connection each time, as through a load balancer
                async with httpx.AsyncClient(base_url=node.url, timeout=10, headers={
                        "Authorization": f"Bearer {API_KEY}"}) as c:
                    r = await c.post(path, json=body)
                if r.status_code == 201:
                    return r
                self.failures.append(f"{node.port}: HTTP {r.status_code}")
            except httpx.TransportError as exc:
                self.failures.append(f"{node.port}: {type(exc).__name__}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"could not publish: {self.failures[-5:]}")


async def run_load(pub: FailoverPublisher, stop: asyncio.Event, workers: int = 8) -> None:
    async def one(i: int) -> None:
        j = 0
        while not stop.is_set():
            await (pub.note(i % 2) if j % 2 == 0 else pub.topic(i % 2))
            j += 1
            await asyncio.sleep(0.01)
    await asyncio.gather(*(one(i) for i in range(workers)))


async def check_no_loss(pub: FailoverPublisher, inbox: list[FailoverReader],
                        feed: list[FailoverReader], within: float = 15) -> None:
    notes = set(pub.acked_notes.values())
    for rd in inbox:
        await rd.wait_for(len(notes), timeout=within,
                          pred=lambda e: e.data.get("id") in notes)
        await asyncio.sleep(0.2)
        assert_exact_sequence(rd.events, what="inbox")
        got = [e.data["id"] for e in rd.events]
        assert notes <= set(got), f"lost acknowledged notifications: {notes - set(got)}"
    for rd in feed:
        await rd.wait_for(len(pub.acked_topic), timeout=within,
                          pred=lambda e: e.data.get("id") in pub.acked_topic)
        assert_exact_sequence(rd.events, what="feed")


async def setup(tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess],
                ) -> tuple[list[ServerProcess], list[FailoverReader], list[FailoverReader]]:
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=channel_url(REDIS_URL))
    nodes_to_stop.extend(nodes)
    inbox = [await reader(nodes, INBOX, "alice", first=i % 2, last_id="0") for i in range(4)]
    feed = [await reader(nodes, FEED, f"w{i}", ["ops"], first=i % 2, last_id="0")
            for i in range(4)]
    return nodes, inbox, feed


async def test_sigterm_under_load(tmp_path: Path, pg_url: str,
                                  nodes_to_stop: list[ServerProcess]) -> None:
    nodes, inbox, feed = await setup(tmp_path, pg_url, nodes_to_stop)
    pub, stop = FailoverPublisher(nodes), asyncio.Event()
    load = asyncio.create_task(run_load(pub, stop))
    await asyncio.sleep(1.0)

    t0 = time.monotonic()
    code = await asyncio.to_thread(nodes[0].terminate, 20)
    # uvicorn re-raises the signal once it has shut down cleanly
    assert code in (0, -signal.SIGTERM), nodes[0].log()[-2000:]
    assert "Application shutdown complete" in nodes[0].log()
    assert time.monotonic() - t0 < 10
    # The node ended its streams (clients were told to go), they did not break.
    on_node1 = [rd for rd in inbox + feed if rd.urls[0].startswith(nodes[0].url)]
    for rd in on_node1:
        await eventually(lambda rd=rd: rd.connects >= 2, 5, "the client to move")
        assert rd.ended_by_server >= 1, rd.errors
    await asyncio.sleep(1.0)
    stop.set()
    await load
    await check_no_loss(pub, inbox, feed)
    for rd in inbox + feed:
        await rd.close()


async def test_sigterm_finishes_an_in_flight_publish(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    """A 10,000-recipient publish is in flight when the node gets SIGTERM: it still
    answers 201, and everything it acknowledged is stored."""
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=channel_url(REDIS_URL))
    nodes_to_stop.extend(nodes)
    last = await reader(nodes[1:], INBOX, "u9999")
    recipients = [f"u{i}" for i in range(10_000)]
    async with publisher(nodes[0].url) as p:
        req = asyncio.create_task(p.post("/api/notifications", json={
            "recipients": recipients, "type": "t", "title": "big"}))
        await asyncio.sleep(0.25)
        assert not req.done(), "the publish finished before the signal: make it bigger"
        nodes[0].proc.send_signal(signal.SIGTERM)
        r = await req
    assert r.status_code == 201, r.text
    assert len(r.json()["ids"]) == 10_000
    assert await asyncio.to_thread(nodes[0].proc.wait, 20) in (0, -signal.SIGTERM)
    await last.wait_for(1, timeout=5)
    assert last.events[0].data["id"] == r.json()["ids"]["u9999"]
    async with httpx.AsyncClient(base_url=nodes[1].url, timeout=10, headers={
            "Authorization": f"Bearer {mint('u1234')}"}) as c:
        items = (await c.get("/api/notifications")).json()["items"]
        assert [i["id"] for i in items] == [r.json()["ids"]["u1234"]]
    await last.close()


async def test_sigkill_under_load(tmp_path: Path, pg_url: str,
                                  nodes_to_stop: list[ServerProcess]) -> None:
    nodes, inbox, feed = await setup(tmp_path, pg_url, nodes_to_stop)
    pub, stop = FailoverPublisher(nodes), asyncio.Event()
    load = asyncio.create_task(run_load(pub, stop))
    await asyncio.sleep(1.0)
    nodes[0].kill()
    await asyncio.sleep(1.5)
    stop.set()
    await load
    assert pub.failures, "the kill interrupted no publish"
    await check_no_loss(pub, inbox, feed)
    for rd in inbox + feed:
        if rd.urls[0].startswith(nodes[0].url):
            assert rd.connects >= 2
        await rd.close()


async def test_killed_node_acknowledged_but_unannounced_event(
        tmp_path: Path, pg_url: str, private_redis: PrivateRedis,
        nodes_to_stop: list[ServerProcess]) -> None:
    """Node 1 cannot reach Redis (a frozen link), stores and acknowledges an event,
    and is killed before the link comes back, so it never announces it. Node 2 was
    healthy all along: its client still gets the event, from the hub's safety sweep
    (every 10 x --degraded-poll, 5 s here)."""
    fast = {"ping_interval": "0.5s", "ping_timeout": "0.5s", "backoff_max": "0.5s"}
    with TcpProxy("127.0.0.1", private_redis.port) as proxy:
        direct = channel_url(private_redis.url, **fast)
        via = direct.replace(f":{private_redis.port}/", f":{proxy.port}/")
        nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=[via, direct])
        nodes_to_stop.extend(nodes)
        on2 = await FailoverReader([nodes[1].url + INBOX], mint("alice")).start()
        proxy.freeze()
        await eventually(lambda: _degraded(nodes[0]), 4, "node 1 degraded")
        async with publisher(nodes[0].url) as p:
            nid = await publish_note(p, "alice", "acknowledged by node 1")
        nodes[0].kill()
        proxy.restore()
        events = await on2.wait_for(1, timeout=10)
        assert events[0].data["id"] == nid
        await on2.close()


async def _degraded(node: ServerProcess) -> bool:
    _, body = await readyz(node)
    return bool(body.get("broker") == "down")
