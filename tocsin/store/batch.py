"""Group commit: concurrent publishes written together in shared transactions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tocsin.store.base import NewNotification, PublishResult


@dataclass(slots=True)
class PublishJob:
    users: list[str]
    note: NewNotification


class GroupCommit:
    """Collects concurrent publishes and writes them in shared transactions.

    At most ``inflight`` transactions run at once; each takes every job queued
    when it starts (up to ``max_rows`` recipients). If a shared transaction fails,
    its jobs are retried one by one, so a bad job fails alone and nothing is
    half-written.
    """

    def __init__(self, run: Callable[[list[PublishJob]], Awaitable[list[PublishResult]]],
                 inflight: int, max_rows: int = 5000) -> None:
        self._run = run
        self._queue: list[tuple[PublishJob, asyncio.Future[PublishResult]]] = []
        self._inflight = 0
        self._max_inflight = inflight
        self._max_rows = max_rows
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, job: PublishJob) -> PublishResult:
        fut: asyncio.Future[PublishResult] = asyncio.get_running_loop().create_future()
        self._queue.append((job, fut))
        if self._inflight < self._max_inflight:
            self._inflight += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    def _take(self) -> list[tuple[PublishJob, asyncio.Future[PublishResult]]]:
        rows, n = 0, 0
        for job, _ in self._queue:
            if n and rows + len(job.users) > self._max_rows:
                break
            rows += len(job.users)
            n += 1
        batch, self._queue = self._queue[:n], self._queue[n:]
        return batch

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                try:
                    results = await self._run([job for job, _ in batch])
                except Exception as exc:
                    if len(batch) == 1:
                        _settle(batch[0][1], exc)
                        continue
                    for job, fut in batch:
                        try:
                            _settle(fut, (await self._run([job]))[0])
                        except Exception as one:
                            _settle(fut, one)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    _settle(fut, result)
        finally:
            self._inflight -= 1


def _settle(fut: asyncio.Future[PublishResult], outcome: PublishResult | BaseException) -> None:
    if fut.done():
        return  # the caller went away
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)
