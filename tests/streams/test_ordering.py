"""The stream invariant under concurrency, on SQLite and PostgreSQL:

within one stream, ids strictly increase in the order the client receives them, and
a client holding id N never later finds an event <= N that it did not receive. Eight
concurrent publishers write to one inbox and one topic while subscribers drop and
resume at random points; every resume must return the exact suffix.
"""

from __future__ import annotations

import asyncio
import random

import httpx

from tests.support.ids import seq_of
from tests.support.server import ServerProcess
from tests.support.sse import Received, StreamReader, open_stream

PUBLISHERS = 8
PER_PUBLISHER = 30
TOPIC_EVERY = 3


async def _publisher(srv: ServerProcess, w: int, user: str, topic: str,
                     acked: list[str]) -> None:
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    async with httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=30) as c:
        for i in range(PER_PUBLISHER):
            r = await c.post("/api/notifications", json={
                "recipients": [user, f"bystander-{w}"], "type": "load",
                "title": f"w{w}-{i}", "data": {"w": w, "i": i}})
            assert r.status_code == 201, r.text
            acked.append(r.json()["ids"][user])
            if i % TOPIC_EVERY == 0:
                r = await c.post(f"/api/topics/{topic}/events",
                                 json={"type": "load", "title": f"w{w}-{i}"})
                assert r.status_code == 201, r.text
            await asyncio.sleep(random.random() * 0.005)


def _assert_exact(events: list[Received], after: int, total: int) -> None:
    ids = [seq_of(e.id) for e in events]
    assert ids == list(range(after + 1, total + 1)), (after, ids[:10], ids[-10:])


async def _hopper(url: str, token: str, total: int, stop: asyncio.Event) -> list[Received]:
    """Behave like EventSource on a flaky network: drop and resume from the last id."""
    got: list[Received] = []
    last: str | None = "0"
    while True:
        s = await open_stream(url, token, last)
        try:
            await asyncio.sleep(random.uniform(0.05, 0.3))
        finally:
            await s.close()
        got.extend(s.events)
        if got:
            last = got[-1].id
        if stop.is_set() and len(got) >= total:
            return got
        if stop.is_set():
            s = await open_stream(url, token, last)
            try:
                await s.wait_for(total - len(got), timeout=30)
            finally:
                await s.close()
            got.extend(s.events)
            return got


async def test_concurrent_publishers_random_resumes_exact_suffixes(
    server: ServerProcess, uid: str
) -> None:
    user, topic = f"hot-{uid}", f"hot-{uid}"
    inbox = server.url + "/api/notifications/stream"
    feed = f"{server.url}/api/topics/{topic}/stream"
    tok = server.token(user, topics=[topic])
    total_user = PUBLISHERS * PER_PUBLISHER
    total_topic = PUBLISHERS * len(range(0, PER_PUBLISHER, TOPIC_EVERY))

    live = [await open_stream(inbox, tok, "0") for _ in range(3)]
    live_topic = [await open_stream(feed, tok, "0") for _ in range(2)]
    stop = asyncio.Event()
    hoppers = [asyncio.create_task(_hopper(inbox, tok, total_user, stop)),
               asyncio.create_task(_hopper(feed, tok, total_topic, stop))]
    acked: list[str] = []

    async def resumer(url: str, reference: StreamReader, total: int) -> list[tuple[int, int]]:
        """Resume at random points taken from what a live client has seen so far."""
        checked = []
        for _ in range(6):
            await asyncio.sleep(random.uniform(0.05, 0.25))
            seen = [e.id for e in reference.events]
            last = random.choice(seen) if seen else "0"
            point = seq_of(last)
            s = await open_stream(url, tok, last)
            try:
                await asyncio.sleep(0.1)
            finally:
                await s.close()
            ids = s.ids
            # A prefix of the exact suffix: strictly next ids, nothing skipped.
            assert ids == list(range(point + 1, point + 1 + len(ids))), (point, ids[:10])
            checked.append((point, len(ids)))
        return checked

    resumers = [asyncio.create_task(resumer(inbox, live[0], total_user)),
                asyncio.create_task(resumer(feed, live_topic[0], total_topic))]
    await asyncio.gather(*(_publisher(server, w, user, topic, acked)
                           for w in range(PUBLISHERS)))
    stop.set()
    try:
        for s in live:
            events = await s.wait_for(total_user, timeout=30)
            _assert_exact(events, 0, total_user)
            assert {e.data["id"] for e in events} == set(acked)  # acknowledged = delivered
        for s in live_topic:
            _assert_exact(await s.wait_for(total_topic, timeout=30), 0, total_topic)
        hopped_user, hopped_topic = await asyncio.gather(*hoppers)
        _assert_exact(hopped_user, 0, total_user)
        _assert_exact(hopped_topic, 0, total_topic)
        assert all(await asyncio.gather(*resumers))
        # Finally, resumes at random points after the fact return the exact suffix,
        # payload for payload.
        reference = live[0].events
        for point in random.sample(range(total_user), 5):
            s = await open_stream(inbox, tok, reference[point - 1].id if point else "0")
            try:
                got = await s.wait_for(total_user - point, timeout=30)
            finally:
                await s.close()
            _assert_exact(got, point, total_user)
            assert [e.data for e in got] == [e.data for e in reference[point:]]
    finally:
        for s in live + live_topic:
            await s.close()
