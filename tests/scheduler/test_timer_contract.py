"""The TimerStore contract on SQLite and PostgreSQL: exactly-once claims under
concurrency, lease expiry after a node dies, timers due while nobody ran fire once
on return, an injectable clock."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.support.clock import ManualClock
from tocsin.scheduler import NewTimer, Scheduler, Timer, TimerStore
from tocsin.store import Store
from tocsin.store.sql import SqlStore
from tocsin.store.timers import SqlTimerStore

T0 = 1_000_000_000


def timers_of(store: Store) -> SqlTimerStore:
    assert isinstance(store, SqlStore)
    ts = SqlTimerStore(store.db)
    assert isinstance(ts, TimerStore)
    return ts


def timer(i: int, due: int = T0, key: str = "k") -> NewTimer:
    return NewTimer(f"t{i}", "test", key, due, {"i": i})


async def test_only_due_timers_are_claimed_by_the_given_clock(store: Store) -> None:
    ts = timers_of(store)
    await ts.add_timers([timer(1, T0), timer(2, T0 + 5000)], T0)
    assert await ts.claim("a", T0 - 1, 1000) == []
    (got,) = await ts.claim("a", T0, 60_000)
    assert (got.id, got.payload, got.attempts, got.owner) == ("t1", {"i": 1}, 1, "a")
    assert await ts.claim("b", T0 + 4999, 1000) == []  # t1 leased, t2 not due
    assert [t.id for t in await ts.claim("b", T0 + 5000, 1000)] == ["t2"]


async def test_adding_an_existing_id_keeps_the_first(store: Store) -> None:
    ts = timers_of(store)
    await ts.add_timers([timer(1, T0)], T0)
    await ts.add_timers([NewTimer("t1", "test", "k", T0 + 9, {"i": 9})], T0)
    (t,) = await ts.pending()
    assert (t.due_at, t.payload) == (T0, {"i": 1})


async def test_lease_expires_when_its_owner_dies(store: Store) -> None:
    ts = timers_of(store)
    await ts.add_timers([timer(1)], T0)
    (held,) = await ts.claim("dead-node", T0, 30_000)
    assert await ts.claim("other", T0 + 29_999, 30_000) == []
    (taken,) = await ts.claim("other", T0 + 30_000, 30_000)
    assert taken.attempts == 2
    assert not await ts.finish(held, [], T0 + 30_001)  # the dead node lost it
    assert await ts.finish(taken, [timer(2, T0 + 60_000)], T0 + 30_001)
    assert [t.id for t in await ts.pending()] == ["t2"]


async def test_release_makes_it_due_again_later(store: Store) -> None:
    ts = timers_of(store)
    await ts.add_timers([timer(1)], T0)
    (t,) = await ts.claim("a", T0, 30_000)
    assert await ts.release(t, T0 + 100)
    assert await ts.claim("b", T0 + 99, 1000) == []
    assert [x.owner for x in await ts.claim("b", T0 + 100, 1000)] == ["b"]


async def test_cancel_by_kind_and_key(store: Store) -> None:
    ts = timers_of(store)
    await ts.add_timers([timer(1, key="x"), timer(2, key="x"), timer(3, key="y")], T0)
    assert await ts.cancel("test", "x") == 2
    assert [t.id for t in await ts.pending()] == ["t3"]


async def test_concurrent_claimers_get_each_timer_once(store: Store) -> None:
    ts = timers_of(store)
    await ts.add_timers([timer(i) for i in range(200)], T0)

    async def node(name: str) -> list[str]:
        got: list[str] = []
        while batch := await ts.claim(name, T0, 60_000, limit=7):
            got += [t.id for t in batch]
            for t in batch:
                assert await ts.finish(t, [], T0)
        return got

    results = await asyncio.gather(*(node(f"n{i}") for i in range(6)))
    counts = Counter(i for r in results for i in r)
    assert len(counts) == 200 and set(counts.values()) == {1}
    assert await ts.pending() == []


async def test_scheduler_fires_what_came_due_while_down_once_and_chains(store: Store) -> None:
    ts = timers_of(store)
    clock = ManualClock(T0)
    fired: list[tuple[str, int]] = []

    async def handler(t: Timer) -> list[NewTimer]:
        fired.append((t.id, clock.now))
        i = int(t.payload["i"])
        return [timer(i + 1, t.due_at + 1000)] if i < 3 else []

    # Scheduled, then every node was down for an hour.
    await ts.add_timers([timer(1, T0 + 1000)], T0)
    clock.now = T0 + 3_600_000
    a = Scheduler(ts, clock, owner="a")
    b = Scheduler(ts, clock, owner="b")
    for s in (a, b):
        s.on("test", handler)
    for _ in range(10):
        await asyncio.gather(a.run_due(), b.run_due())
    assert [f[0] for f in fired] == ["t1", "t2", "t3"]  # each once, in order
    assert await ts.pending() == []


async def test_a_failing_handler_is_retried_with_backoff(store: Store) -> None:
    ts = timers_of(store)
    clock = ManualClock(T0)
    calls = 0

    async def flaky(t: Timer) -> list[NewTimer]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return []

    s = Scheduler(ts, clock, owner="a")
    s.on("test", flaky)
    await ts.add_timers([timer(1)], T0)
    await s.run_due()
    (t,) = await ts.pending()
    assert t.due_at > T0 and t.owner == ""
    clock.now = t.due_at
    await s.run_due()
    assert calls == 2 and await ts.pending() == []


async def test_a_timer_that_keeps_failing_is_given_up_after_max_failures(store: Store) -> None:
    """Bounded retries: after ``MAX_FAILURES`` failed runs the kind's give-up hook runs
    and the timer is deleted (before, it was retried every minute for ever); a
    refused input (4xx, ``GiveUp``) is given up at the first failure."""
    from tocsin.errors import TocsinError
    from tocsin.scheduler.runner import MAX_FAILURES

    ts = timers_of(store)
    clock = ManualClock(T0)
    calls: Counter[str] = Counter()
    given_up: list[tuple[str, str]] = []
    counted: list[str] = []

    async def failing(t: Timer) -> list[NewTimer]:
        calls[t.id] += 1
        if t.id == "t2":
            raise TocsinError("invalid_field", "never valid", "x")
        raise RuntimeError("down")

    async def hook(t: Timer, reason: str) -> None:
        given_up.append((t.id, reason))

    s = Scheduler(ts, clock, owner="a")
    s.on("test", failing, give_up=hook)
    s.on_given_up = counted.append
    await ts.add_timers([timer(1), timer(2)], T0)
    for _ in range(MAX_FAILURES + 5):
        await s.run_due()
        clock.advance(3_600_000)
    assert calls == {"t1": MAX_FAILURES, "t2": 1}
    assert given_up == [("t2", "never valid"), ("t1", "down")]
    assert counted == ["test", "test"] and await ts.pending() == []
