"""Group commit (``tocsin/store/batch.py``) with a fake transaction function: no database."""

from __future__ import annotations

import asyncio

import pytest

from tocsin.store.base import NewNotification, NewTopicEvent, PublishResult
from tocsin.store.batch import GroupCommit, Job, JobResult, PublishJob, TopicJob


class BadJob(Exception):
    pass


def job(name: str, users: int = 1) -> PublishJob:
    return PublishJob([f"{name}-u{i}" for i in range(users)], NewNotification("t", name))


def name_of(j: Job) -> str:
    return j.note.title if isinstance(j, PublishJob) else j.event.title


def result_for(j: Job) -> PublishResult:
    assert isinstance(j, PublishJob)
    return PublishResult(ids={u: f"id-{u}" for u in j.users})


class FakeTx:
    """Stands in for the store's transaction: records each call's jobs, can hold every
    transaction open until released, and fails any transaction holding a job named "bad"."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.running = 0
        self.max_running = 0
        self.started = asyncio.Event()

    async def __call__(self, jobs: list[Job]) -> list[JobResult]:
        self.calls.append([name_of(j) for j in jobs])
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            await self.gate.wait()
            await asyncio.sleep(0)
            if any(name_of(j) == "bad" for j in jobs):
                raise BadJob("the bad job breaks its transaction")
            return [result_for(j) for j in jobs]
        finally:
            self.running -= 1


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_submits_during_a_transaction_share_the_next_one() -> None:
    tx = FakeTx(hold=True)
    gc = GroupCommit(tx, inflight=1)
    first = asyncio.ensure_future(gc.submit(job("a")))
    await tx.started.wait()
    rest = [asyncio.ensure_future(gc.submit(job(n))) for n in "bcde"]
    await turns()
    assert tx.calls == [["a"]]  # nothing else started while "a" is in flight
    tx.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *rest), 2)
    assert tx.calls == [["a"], ["b", "c", "d", "e"]]
    assert [r.ids for r in results if isinstance(r, PublishResult)] == [
        {f"{n}-u0": f"id-{n}-u0"} for n in "abcde"]


async def test_at_most_inflight_transactions_at_once() -> None:
    tx = FakeTx(hold=True)
    gc = GroupCommit(tx, inflight=2)
    subs = []
    for i in range(6):
        subs.append(asyncio.ensure_future(gc.submit(job(f"j{i}"))))
        await turns()  # each arrives on its own, after the previous one started
    assert tx.running == 2 and tx.max_running == 2
    assert tx.calls == [["j0"], ["j1"]]
    tx.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*subs), 2)
    assert tx.max_running == 2
    # The queued four go in one of the two freed transactions, none lost or repeated.
    assert sorted(n for call in tx.calls for n in call) == [f"j{i}" for i in range(6)]
    assert tx.calls[2:] == [["j2", "j3", "j4", "j5"]]
    assert [list(r.ids) for r in results if isinstance(r, PublishResult)] == [
        [f"j{i}-u0"] for i in range(6)]
    # Idle again: the next submit starts a transaction of its own.
    assert await asyncio.wait_for(gc.submit(job("later")), 2) == result_for(job("later"))
    assert tx.calls[-1] == ["later"]


async def test_max_rows_caps_a_batch_by_recipients() -> None:
    tx = FakeTx(hold=True)
    gc = GroupCommit(tx, inflight=1, max_rows=5)
    first = asyncio.ensure_future(gc.submit(job("first")))
    await tx.started.wait()
    sizes = {"a": 3, "b": 2, "c": 1, "d": 4, "big": 9, "e": 1}
    subs = [asyncio.ensure_future(gc.submit(job(n, users))) for n, users in sizes.items()]
    await turns()
    tx.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *subs), 2)
    # 3+2 = 5 fits; +1 would be 6. 1+4 = 5. A job over the cap goes alone, not never.
    assert tx.calls == [["first"], ["a", "b"], ["c", "d"], ["big"], ["e"]]


async def test_topic_jobs_count_one_row_each() -> None:
    tx_calls: list[int] = []

    async def run(jobs: list[Job]) -> list[JobResult]:
        tx_calls.append(len(jobs))
        await asyncio.sleep(0)
        return [result_for(job("x")) for _ in jobs]

    gc = GroupCommit(run, inflight=1, max_rows=3)
    subs = [asyncio.ensure_future(gc.submit(TopicJob("t", NewTopicEvent("a", f"e{i}"))))
            for i in range(7)]
    await asyncio.wait_for(asyncio.gather(*subs), 2)
    assert tx_calls == [3, 3, 1]


async def test_failed_shared_batch_is_retried_job_by_job() -> None:
    tx = FakeTx(hold=True)
    gc = GroupCommit(tx, inflight=1)
    first = asyncio.ensure_future(gc.submit(job("first")))
    await tx.started.wait()
    subs = [asyncio.ensure_future(gc.submit(job(n))) for n in ("ok1", "bad", "ok2")]
    await turns()
    tx.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *subs, return_exceptions=True), 2)
    assert tx.calls == [["first"], ["ok1", "bad", "ok2"], ["ok1"], ["bad"], ["ok2"]]
    assert results[0] == result_for(job("first"))
    assert results[1] == result_for(job("ok1"))
    assert isinstance(results[2], BadJob)
    assert results[3] == result_for(job("ok2"))


async def test_a_failing_job_alone_is_not_run_twice() -> None:
    tx = FakeTx()
    gc = GroupCommit(tx, inflight=1)
    with pytest.raises(BadJob):
        await asyncio.wait_for(gc.submit(job("bad")), 2)
    assert tx.calls == [["bad"]]
    assert await asyncio.wait_for(gc.submit(job("ok")), 2) == result_for(job("ok"))


async def test_a_caller_that_went_away_does_not_break_settling() -> None:
    tx = FakeTx(hold=True)
    gc = GroupCommit(tx, inflight=1)
    first = asyncio.ensure_future(gc.submit(job("first")))
    await tx.started.wait()
    a = asyncio.ensure_future(gc.submit(job("a")))
    gone = asyncio.ensure_future(gc.submit(job("gone")))
    b = asyncio.ensure_future(gc.submit(job("b")))
    await turns()
    gone.cancel()
    tx.gate.set()
    assert await asyncio.wait_for(first, 2) == result_for(job("first"))
    assert await asyncio.wait_for(a, 2) == result_for(job("a"))
    assert await asyncio.wait_for(b, 2) == result_for(job("b"))
    assert gone.cancelled()
    assert tx.calls == [["first"], ["a", "gone", "b"]]  # it was already queued: written

    # Again, in a batch that fails and is retried job by job.
    tx.gate.clear()
    tx.started.clear()
    first = asyncio.ensure_future(gc.submit(job("first2")))
    await tx.started.wait()
    subs = [asyncio.ensure_future(gc.submit(job(n))) for n in ("gone2", "bad", "ok")]
    await turns()
    subs[0].cancel()
    tx.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *subs[1:], return_exceptions=True), 2)
    assert isinstance(results[1], BadJob) and results[2] == result_for(job("ok"))
    assert subs[0].cancelled()
    # Still usable afterwards.
    assert await asyncio.wait_for(gc.submit(job("after")), 2) == result_for(job("after"))


async def test_results_reach_their_own_callers_in_order() -> None:
    tx = FakeTx(hold=True)
    gc = GroupCommit(tx, inflight=1)
    first = asyncio.ensure_future(gc.submit(job("first")))
    await tx.started.wait()
    names = [f"n{i}" for i in range(50)]
    subs = [asyncio.ensure_future(gc.submit(job(n, users=1 + i % 3)))
            for i, n in enumerate(names)]
    await turns()
    tx.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *subs), 2)
    assert tx.calls == [["first"], names]
    for n, i, r in zip(names, range(50), results[1:], strict=True):
        assert r == result_for(job(n, users=1 + i % 3))


async def test_a_broken_run_never_leaves_callers_waiting() -> None:
    """A run that returns the wrong number of results (or is interrupted) fails its
    callers instead of leaving them waiting forever."""

    async def short(jobs: list[Job]) -> list[JobResult]:
        await asyncio.sleep(0)
        return [result_for(j) for j in jobs][:-1]

    gc = GroupCommit(short, inflight=1)
    first = asyncio.ensure_future(gc.submit(job("a")))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(gc.submit(job(n))) for n in ("b", "c")]
    outcomes = await asyncio.wait_for(
        asyncio.gather(first, *rest, return_exceptions=True), 2)
    # "a" alone: its one result is missing; "b" got its own; "c"'s is missing.
    assert [type(o) for o in outcomes] == [ValueError, PublishResult, ValueError]
