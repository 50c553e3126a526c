"""Two nodes on one PostgreSQL schema and one Redis channel: whatever is published
through one node reaches streams held by the other, and a client resumes on either."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.cluster.helpers import (
    assert_exact_sequence,
    channel_url,
    publish_note,
    publish_topic,
    publisher,
    reader,
    start_nodes,
)
from tests.support.ids import with_seq
from tests.support.server import ServerProcess, mint
from tests.support.services import REDIS_URL
from tests.support.sse import open_stream

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

INBOX = "/api/notifications/stream"


async def test_inbox_and_topic_cross_nodes_and_resume_elsewhere(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=channel_url(REDIS_URL))
    nodes_to_stop.extend(nodes)
    n1, n2 = nodes
    topic_path = "/api/topics/team:core/stream"

    on2 = await open_stream(n2.url + INBOX, mint("alice"))
    on1 = await open_stream(n1.url + INBOX, mint("alice"))
    feed2 = await open_stream(n2.url + topic_path, mint("bob", ["team:*"]))
    async with publisher(n1.url) as p1, publisher(n2.url) as p2:
        ids = [await publish_note(p1, "alice", f"from node 1 #{i}") for i in range(3)]
        events = await on2.wait_for(3, timeout=5)
        assert [e.data["id"] for e in events] == ids
        assert [e.event for e in events] == ["notification"] * 3
        assert on2.ids == [1, 2, 3]
        await on1.wait_for(3, timeout=5)
        assert on1.ids == [1, 2, 3]

        tids = [await publish_topic(p1, "team:core", f"activity {i}") for i in range(2)]
        got = await feed2.wait_for(2, timeout=5)
        assert [e.data["id"] for e in got] == tids
        assert {e.event for e in got} == {"activity"}

        # Read state changes made through node 2 reach the stream on node 1.
        async with httpx.AsyncClient(base_url=n2.url, timeout=10, headers={
                "Authorization": f"Bearer {mint('alice')}"}) as alice2:
            r = await alice2.patch(f"/api/notifications/{ids[0]}", json={"read": True})
            assert r.status_code == 200, r.text
        read_ev = (await on1.wait_for(4, timeout=5))[3]
        assert read_ev.event == "read" and read_ev.data["ids"] == [ids[0]]

        # A client that saw event 2 on node 1 goes away; more is published through
        # both nodes; it comes back on node 2 with the id it had from node 1.
        last_from_node1 = on1.events[1].id
        await on1.close()
        more = [await publish_note(p, "alice", f"while away {i}")
                for i, p in enumerate((p2, p1, p2))]
        back = await open_stream(n2.url + INBOX, mint("alice"), last_event_id=last_from_node1)
        got = await back.wait_for(5, timeout=5)
        assert back.ids == [3, 4, 5, 6, 7]
        assert got[0].data["id"] == ids[2] and got[1].event == "read"
        assert [e.data["id"] for e in got[2:]] == more
        # and with the query parameter the seed's client uses, on node 1
        back1 = await open_stream(n1.url + INBOX, mint("alice"),
                                  last_event_id=with_seq(last_from_node1, 5), use_header=False)
        await back1.wait_for(2, timeout=5)
        await asyncio.sleep(0.2)
        assert back1.ids == [6, 7]

        # Topic resume across nodes too.
        feed_back = await open_stream(n1.url + topic_path, mint("carol", ["team:core"]),
                                      last_event_id=feed2.events[0].id)
        await feed_back.wait_for(1, timeout=5)
        await asyncio.sleep(0.2)
        assert feed_back.ids == [2]
    for s in (on2, feed2, back, back1, feed_back):
        await s.close()


async def test_broadcast_over_nodes_is_one_broker_message(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    """A topic event with subscribers on three nodes costs one PUBLISH, and a
    notification to many recipients one PUBLISH per batch, not one per connection."""
    import redis.asyncio as aioredis

    broker = channel_url(REDIS_URL)
    nodes = await start_nodes(tmp_path, 3, database=pg_url, broker=broker)
    nodes_to_stop.extend(nodes)
    channel = broker.rpartition("channel=")[2]
    readers = [await reader(nodes, "/api/topics/all/stream", f"u{i}", ["all"], first=i % 3)
               for i in range(12)]
    inboxes = [await reader(nodes, INBOX, f"r{i}", first=i % 3) for i in range(12)]
    r = aioredis.from_url(REDIS_URL)
    ps = r.pubsub()
    await ps.subscribe(channel)
    await ps.get_message(timeout=1)
    try:
        async with publisher(nodes[0].url) as p:
            await publish_topic(p, "all", "to everyone")
            resp = await p.post("/api/notifications", json={
                "recipients": [f"r{i}" for i in range(12)], "type": "t", "title": "hi"})
            assert resp.status_code == 201
        for rd in readers + inboxes:
            await rd.wait_for(1, timeout=5)
            assert_exact_sequence(rd.events, expected_ids=[1])
        msgs = []
        while (m := await ps.get_message(timeout=0.3)) is not None:
            # Presence shares the channel (its own messages, once per change or per node
            # interval, never per event): count only event batches here.
            if not m["data"].startswith(b'{"pr":'):
                msgs.append(m)
        assert len(msgs) == 2, f"expected 2 event broker messages, got {len(msgs)}"
    finally:
        await ps.aclose()
        await r.aclose()
        for rd in readers + inboxes:
            await rd.close()


async def test_redis_password_never_reaches_the_log(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    from tests.broker.redis_server import PrivateRedis, need_redis_server

    need_redis_server()
    secret = "s3cret-redis-pw"
    (tmp_path / "redis").mkdir()
    redis = PrivateRedis(tmp_path / "redis", args=["--requirepass", secret]).start()
    try:
        broker = channel_url(f"redis://:{secret}@127.0.0.1:{redis.port}/0")
        (node,) = await start_nodes(tmp_path, 1, database=pg_url, broker=broker)
        nodes_to_stop.append(node)
        async with httpx.AsyncClient(base_url=node.url, timeout=5) as c:
            stats = (await c.get("/api/stats", headers={
                "Authorization": f"Bearer {node.api_key}"})).json()
            assert (await c.get("/readyz")).json()["broker"] == "ok"
        assert secret not in str(stats)
        node.stop()
        assert secret not in node.log()
    finally:
        redis.stop()
