"""Many publishers over two nodes into one inbox and one topic: every subscriber, on
either node, sees every event exactly once in strictly increasing id order, and a
resume at any point, on either node, returns exactly the rest."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.cluster.helpers import (
    assert_exact_sequence,
    channel_url,
    check_random_resumes,
    publish_note,
    publish_topic,
    publisher,
    reader,
    start_nodes,
)
from tests.support.server import ServerProcess, mint
from tests.support.services import REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PUBLISHERS = 10
PER_PUBLISHER = 25
INBOX = "/api/notifications/stream"
FEED = "/api/topics/ops/stream"


async def test_concurrent_publishers_over_two_nodes(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=channel_url(REDIS_URL))
    nodes_to_stop.extend(nodes)
    # two subscribers per stream on each node, connected before the first publish
    inbox_readers = [await reader(nodes, INBOX, "alice", first=i % 2) for i in range(4)]
    feed_readers = [await reader(nodes, FEED, f"watcher{i}", ["ops"], first=i % 2)
                    for i in range(4)]
    # and one that joins mid-way with Last-Event-ID = its own last id
    acked_notes: set[str] = set()
    acked_topic: set[str] = set()

    async def publish(i: int) -> None:
        async with publisher(nodes[i % 2].url) as p:
            for j in range(PER_PUBLISHER):
                if j % 2 == 0:
                    acked_notes.add(await publish_note(p, "alice", f"p{i} n{j}"))
                else:
                    acked_topic.add(await publish_topic(p, "ops", f"p{i} t{j}"))

    await asyncio.gather(*(publish(i) for i in range(PUBLISHERS)))
    n_notes, n_topic = len(acked_notes), len(acked_topic)
    assert n_notes + n_topic == PUBLISHERS * PER_PUBLISHER
    for rd in inbox_readers:
        events = await rd.wait_for(n_notes, timeout=15)
        assert_exact_sequence(events, expected_ids=range(1, n_notes + 1), what="inbox")
        assert {e.data["id"] for e in events} == acked_notes
    for rd in feed_readers:
        events = await rd.wait_for(n_topic, timeout=15)
        assert_exact_sequence(events, expected_ids=range(1, n_topic + 1), what="topic")
        assert {e.data["id"] for e in events} == acked_topic
    await asyncio.sleep(0.3)
    for rd in inbox_readers + feed_readers:
        assert rd.connects == 1, "a subscriber had to reconnect"
        assert len(rd.events) == (n_notes if rd in inbox_readers else n_topic), "extra events"
    # every subscriber saw the same events with the same payloads
    first = [(e.id, e.data) for e in inbox_readers[0].events]
    assert all([(e.id, e.data) for e in rd.events] == first for rd in inbox_readers)

    rng = random.Random(20261125)
    await check_random_resumes(nodes, INBOX, mint("alice"), inbox_readers[0].events,
                               count=12, rng=rng)
    await check_random_resumes(nodes, FEED, mint("x", ["ops"]), feed_readers[0].events,
                               count=12, rng=rng)
    for rd in inbox_readers + feed_readers:
        await rd.close()


async def test_resumes_during_publishing(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    """Clients hop between nodes at random moments while 8 publishers are busy: each
    one's concatenated history has no gap and no duplicate."""
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=channel_url(REDIS_URL))
    nodes_to_stop.extend(nodes)
    total = 8 * 20
    done = asyncio.Event()

    async def publish(i: int) -> None:
        async with publisher(nodes[i % 2].url) as p:
            for j in range(20):
                await publish_note(p, "bob", f"{i}/{j}")

    rng = random.Random(7)

    async def hopper(k: int) -> list[int]:
        seen: list[int] = []
        last = "0"  # from the very beginning
        while not (done.is_set() and seen[-1:] == [total]):
            rd = await reader(nodes, INBOX, "bob", first=rng.randrange(2), last_id=last)
            try:
                await asyncio.sleep(rng.uniform(0.05, 0.3))
            finally:
                await rd.close()
            seen += rd.ids
            if rd.events:
                last = rd.events[-1].wire_id
        return seen

    hoppers = [asyncio.create_task(hopper(k)) for k in range(4)]
    await asyncio.gather(*(publish(i) for i in range(8)))
    done.set()
    results = await asyncio.wait_for(asyncio.gather(*hoppers), 30)
    for seen in results:
        assert seen == list(range(1, total + 1)), f"gap or duplicate: {seen}"
