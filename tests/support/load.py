"""Concurrent load for the stream-invariant tests: publishers writing to one inbox and
one topic at once, readers that drop and resume at random, and the check that a
reader got exactly the ids after a point."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx

from tests.support.ids import seq_of
from tests.support.recording import Recording
from tests.support.server import ServerProcess
from tests.support.sse import Received


async def publish_mixed(srv: ServerProcess, w: int, user: str, topic: str, acked: list[str],
                        count: int, topic_every: int) -> None:
    """Publisher ``w``: ``count`` notifications to ``user`` (and a bystander, so the
    inbox seqs are not the only ones allocated), one topic event every ``topic_every``,
    with random pauses so the publishers interleave. ``acked``: the user's ids."""
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    async with httpx.AsyncClient(base_url=srv.url, headers=headers, timeout=30) as c:
        for i in range(count):
            r = await c.post("/api/notifications", json={
                "recipients": [user, f"bystander-{w}"], "type": "load",
                "title": f"w{w}-{i}", "data": {"w": w, "i": i}})
            assert r.status_code == 201, r.text
            acked.append(r.json()["ids"][user])
            if i % topic_every == 0:
                r = await c.post(f"/api/topics/{topic}/events",
                                 json={"type": "load", "title": f"w{w}-{i}"})
                assert r.status_code == 201, r.text
            await asyncio.sleep(random.random() * 0.005)


def assert_exact_suffix(events: Sequence[Received], after: int, total: int) -> None:
    """The events are exactly the seqs ``after + 1 .. total``, in order."""
    ids = [seq_of(e.id) for e in events]
    assert ids == list(range(after + 1, total + 1)), (after, ids[:10], ids[-10:])


async def hop(open_at: Callable[[str], Awaitable[Recording[Received]]], total: int,
              stop: asyncio.Event, within: float | None = None) -> list[Received]:
    """Behave like a client on a flaky network: open a reader after the last id held
    (``open_at(last)``), read a while, drop it, again, until ``stop`` is set; then wait
    for the rest of the ``total`` events. ``within``: a bound on the whole (None: none)."""
    got: list[Received] = []
    last = "0"
    deadline = None if within is None else time.monotonic() + within
    while deadline is None or time.monotonic() < deadline:
        r = await open_at(last)
        try:
            if stop.is_set():
                await r.wait_for(total - len(got), timeout=30)
            else:
                await asyncio.sleep(random.uniform(0.05, 0.3))
        finally:
            await r.close()
        got.extend(r.events)
        if got:
            last = got[-1].id
        if stop.is_set() and len(got) >= total:
            return got
    raise AssertionError(f"hopper got {len(got)} of {total}")


async def resume_at_random(open_at: Callable[[str], Awaitable[Recording[Received]]],
                           reference: Recording[Received], times: int,
                           hold: float) -> list[tuple[int, int]]:
    """``times`` times: resume at a random id a live ``reference`` reader has seen so
    far, read for ``hold`` seconds, and check that what came is a prefix of the exact
    suffix (strictly the next ids, nothing skipped). Returns ``(point, ids read)``."""
    checked = []
    for _ in range(times):
        await asyncio.sleep(random.uniform(0.05, 0.25))
        seen = [e.id for e in reference.events]
        last = random.choice(seen) if seen else "0"
        point = seq_of(last)
        r = await open_at(last)
        try:
            await asyncio.sleep(hold)
        finally:
            await r.close()
        ids = r.ids
        assert ids == list(range(point + 1, point + 1 + len(ids))), (point, ids[:10])
        checked.append((point, len(ids)))
    return checked


async def check_suffixes(open_at: Callable[[str], Awaitable[Recording[Received]]],
                         reference: Sequence[Received], points: int) -> None:
    """After the fact: resumes at ``points`` random points of what a live ``reference``
    reader got (``open_at(last id)``) return exactly the rest, payload for payload."""
    total = len(reference)
    for point in random.sample(range(total), points):
        r = await open_at(reference[point - 1].id if point else "0")
        try:
            got = await r.wait_for(total - point, timeout=30)
        finally:
            await r.close()
        assert_exact_suffix(got, point, total)
        assert [e.data for e in got] == [e.data for e in reference[point:]]
