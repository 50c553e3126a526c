"""Group commit: concurrent writes (notifications, topic events) that arrive while a
transaction is in flight are written together in the next one: multi-row inserts
and one fsync instead of one per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from tocsin.events import StreamEvent
from tocsin.store.base import NewNotification, NewTopicEvent, PublishResult


@dataclass(slots=True)
class PublishJob:
    """One notification to several users; its result is a :class:`PublishResult`."""

    users: list[str]
    note: NewNotification
    skipped: dict[str, str] | None = None
    """Attention: recipients not delivered to (user -> reason), set in the transaction."""
    silent: dict[str, str] | None = None
    """Attention: recipients who get it silently (user -> ``silentReason``)."""
    reach: dict[str, dict[str, int]] | None = None
    """Channels: recipients to reach beyond the tab if they don't see it (user ->
    {channel name: due, ms}), set in the transaction by the publish hook; the
    channels' timers are written once ids are known."""
    always_inbox: bool = False
    """An escalation step's: preferences decide how it may interrupt, never whether
    it is delivered (an incident must reach its targets: docs/escalation.md)."""


@dataclass(slots=True)
class TopicJob:
    """One activity event; its result is the stored :class:`StreamEvent`."""

    topic: str
    event: NewTopicEvent


Job = PublishJob | TopicJob
JobResult = PublishResult | StreamEvent


class Waiter(Protocol):
    """Where a queued job's outcome goes: the future of one :meth:`GroupCommit.submit`,
    or a :class:`_Slot` of a :meth:`GroupCommit.submit_many`."""

    def done(self) -> bool: ...
    def set_result(self, result: JobResult, /) -> None: ...
    def set_exception(self, exc: BaseException, /) -> None: ...


class _Group:
    """The outcomes of one ``submit_many`` and the one future that wakes its caller
    when the last is in: a bulk publish of 1,000 items waits on one future, not on
    1,000 futures gathered (a future, a done-callback and a loop turn each)."""

    __slots__ = ("all_settled", "left", "outcomes")

    def __init__(self, all_settled: asyncio.Future[None], n: int) -> None:
        self.all_settled = all_settled
        self.left = n
        self.outcomes: list[JobResult | Exception] = [_PENDING] * n

    def settle(self, i: int, outcome: JobResult | Exception) -> None:
        self.outcomes[i] = outcome
        self.left -= 1
        if not self.left and not self.all_settled.done():
            self.all_settled.set_result(None)


class _Slot:
    """One job of a ``submit_many``: settled once, like a future."""

    __slots__ = ("group", "i", "settled")

    def __init__(self, group: _Group, i: int) -> None:
        self.group, self.i, self.settled = group, i, False

    def done(self) -> bool:
        return self.settled

    def set_result(self, result: JobResult, /) -> None:
        self.settled = True
        self.group.settle(self.i, result)

    def set_exception(self, exc: BaseException, /) -> None:
        self.settled = True
        self.group.settle(self.i, exc if isinstance(exc, Exception)
                          else RuntimeError("the write was interrupted"))


_PENDING: Exception = RuntimeError("no outcome")


class GroupCommit:
    """Collects concurrent publishes and writes them in shared transactions.

    At most ``inflight`` transactions run at once; each takes every job queued
    when it starts (up to ``max_rows`` recipients). If a shared transaction fails,
    its jobs are retried one by one, so a bad job fails alone and nothing is
    half-written.
    """

    def __init__(self, run: Callable[[list[Job]], Awaitable[list[JobResult]]],
                 inflight: int, max_rows: int = 5000) -> None:
        self._run = run
        self._queue: list[tuple[Job, Waiter]] = []
        self._inflight = 0
        self._max_inflight = inflight
        self._max_rows = max_rows
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, job: Job) -> JobResult:
        fut: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        self._queue.append((job, fut))
        if self._inflight < self._max_inflight:
            self._inflight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def submit_many(self, jobs: list[Job]) -> list[JobResult | Exception]:
        """Queue ``jobs`` at once (they share the next transactions, in order) and wait
        for all of them: one outcome per job, an exception in its place if it failed
        (a bad job fails alone: see :meth:`_write`)."""
        if not jobs:
            return []
        group = _Group(asyncio.get_running_loop().create_future(), len(jobs))
        self._queue.extend((job, _Slot(group, i)) for i, job in enumerate(jobs))
        while self._inflight < self._max_inflight:
            self._inflight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await group.all_settled
        return group.outcomes

    def _take(self) -> list[tuple[Job, Waiter]]:
        rows, n = 0, 0
        for job, _ in self._queue:
            size = len(job.users) if isinstance(job, PublishJob) else 1
            if n and rows + size > self._max_rows:
                break
            rows += size
            n += 1
        batch, self._queue = self._queue[:n], self._queue[n:]
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                try:
                    await self._write(batch)
                except BaseException as exc:
                    # Whatever went wrong (a broken result, even a cancel), no caller of
                    # this batch is left waiting forever; the next batch still runs.
                    for _, fut in batch:
                        _settle(fut, exc if isinstance(exc, Exception)
                                else RuntimeError("the write was interrupted"))
                    if not isinstance(exc, Exception):
                        raise
        finally:
            self._inflight -= 1

    async def _write(self, batch: list[tuple[Job, Waiter]]) -> None:
        try:
            results = await self._run([job for job, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for job, fut in batch:
                try:
                    _settle(fut, (await self._run([job]))[0])
                except Exception as one:
                    _settle(fut, one)
            return
        for (_, fut), result in zip(batch, results, strict=True):
            _settle(fut, result)


def _settle(fut: Waiter, outcome: JobResult | BaseException) -> None:
    if fut.done():
        return  # the caller went away
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)
