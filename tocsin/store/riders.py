"""Statements that ride along with the next group commit.

A background writer that takes the database's write lock for its own transaction
holds up every publish queued behind it (SQLite has one writer; the trail's flush
of a busy second was tens of milliseconds with a commit of its own, measured as the
unicast p99 doubling). :class:`RidingHook` wraps the store's publish hook and adds
one queued statement to each group-commit transaction instead: no lock of its own,
no commit of its own, and a small chunk per transaction so no publish waits long.

Only for statements whose loss is acceptable: a transaction that rolls back (the
database away, a bad job retried alone) takes the chunk riding with it along. The
trail's live-write marks ride here; they are idempotent (``ON CONFLICT DO NOTHING``)
and a lost one means a trail without its first-write step, nothing else.

Thread-safety: on SQLite the hook runs on the writer thread. ``deque.append`` and
``deque.popleft`` are atomic, which is all the two sides share.
"""

from __future__ import annotations

from collections import deque

from tocsin.store.batch import Job, JobResult
from tocsin.store.hooks import BatchHook, Dismissed, Many, Steps


class RidingHook:
    """``inner`` (a :class:`~tocsin.store.hooks.BatchHook`), plus at most one queued
    statement per transaction that calls :meth:`after_ids` (every group commit)."""

    def __init__(self, inner: BatchHook) -> None:
        self.inner = inner
        self._queue: deque[Many] = deque()
        self.taken = 0
        """Statements taken by a transaction so far (a rider that sees it unchanged
        for a while knows no group commit is running, and writes on its own)."""

    def ride(self, statement: Many) -> None:
        """Queue ``statement`` (keep its rows few: the transaction it joins waits for
        them) for the next group commit."""
        self._queue.append(statement)

    @property
    def waiting(self) -> int:
        """Statements queued and not yet taken."""
        return len(self._queue)

    def take_all(self) -> list[Many]:
        """Every queued statement, for the caller to write itself (nothing is
        committing: no publishes)."""
        out: list[Many] = []
        while True:
            try:
                out.append(self._queue.popleft())
            except IndexError:
                return out

    def decide(self, jobs: list[Job], now: int, clock_now: int) -> Steps:
        return self.inner.decide(jobs, now, clock_now)

    def after_ids(self, jobs: list[Job], results: list[JobResult], now: int) -> list[Many]:
        statements = self.inner.after_ids(jobs, results, now)
        try:
            rider = self._queue.popleft()
        except IndexError:
            return statements
        self.taken += 1
        return [*statements, rider]

    def dismissed(self, user: str, gone: list[Dismissed]) -> Steps:
        return self.inner.dismissed(user, gone)
