"""Publish hooks: what a feature above the store adds to the store's own
transactions (attention: who is skipped or silent, the channels' timers, the quiet
periods). The store is given one at construction (``StoreOptions.hook``) and calls
it; it imports no feature.

A hook is written once for both write paths as generators of :data:`Step`: each
statement (``?`` placeholders) is yielded and its rows are sent back; the runners
here execute them on the SQLite writer's raw connection or through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.store.batch import Job, JobResult

Step = tuple[str, tuple[Any, ...]]
"""One statement of a hook (``?`` placeholders) and its parameters."""
Steps = Generator[Step, list[tuple[Any, ...]], None]
"""A hook's statements: each is sent back the rows it returned."""
Many = tuple[str, list[tuple[Any, ...]]]
"""One statement run for many parameter rows (``executemany``)."""
Dismissed = tuple[str | None, int]
"""A notification just dismissed: its ``silent_reason`` and ``created_at``."""


class BatchHook(Protocol):
    """The three points where the store calls a publish hook, inside the write's
    transaction. Each must cost nothing when it has nothing to do (the group
    commit's hot path)."""

    def decide(self, jobs: list[Job], now: int, clock_now: int) -> Steps:
        """Before seqs are allocated: set each publish job's ``skipped``, ``silent``
        and ``reach`` (``now``: the rows' time; ``clock_now``: the node's clock)."""
        ...

    def after_ids(self, jobs: list[Job], results: list[JobResult], now: int) -> list[Many]:
        """Once the notification ids are known: statements to run (the channels'
        timers); may set each result's ``reached``."""
        ...

    def dismissed(self, user: str, gone: list[Dismissed]) -> Steps:
        """``user`` just dismissed (deleted) these notifications."""
        ...


class NoHook:
    """A store without a feature above it (the store's own tests, tools)."""

    def decide(self, jobs: list[Job], now: int, clock_now: int) -> Steps:
        yield from ()

    def after_ids(self, jobs: list[Job], results: list[JobResult], now: int) -> list[Many]:
        return []

    def dismissed(self, user: str, gone: list[Dismissed]) -> Steps:
        yield from ()


NO_HOOK = NoHook()


def in_marks(n: int) -> str:
    """``?, ?, …`` (``n`` of them): the ``IN`` list of a hook step's statement, which
    :func:`dollar` turns into ``$1, $2, …`` where the driver wants that."""
    return ", ".join(["?"] * n)


def dollar(sql: str, paramstyle: str) -> str:
    """``?`` placeholders as ``$1, $2, ...`` for a driver whose paramstyle wants them."""
    if not paramstyle.endswith("dollar"):
        return sql
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "")
                   for i, p in enumerate(parts))


def run_raw(conn: sqlite3.Connection, steps: Steps) -> None:
    """Execute a hook's steps on the SQLite writer's connection (its transaction)."""
    try:
        sql, params = next(steps)
        while True:
            sql, params = steps.send(conn.execute(sql, params).fetchall())
    except StopIteration:
        pass


async def run_sql(conn: AsyncConnection, steps: Steps) -> None:
    """:func:`run_raw` through SQLAlchemy (PostgreSQL, idempotent and grouped
    publishes, dismissals)."""
    style = conn.dialect.paramstyle
    try:
        sql, params = next(steps)
        while True:
            res = await conn.exec_driver_sql(dollar(sql, style), params)
            sql, params = steps.send(list(res.all()) if res.returns_rows else [])
    except StopIteration:
        pass


def run_many_raw(conn: sqlite3.Connection, statements: list[Many]) -> None:
    for sql, rows in statements:
        if rows:
            conn.executemany(sql, rows)


async def run_many_sql(conn: AsyncConnection, statements: list[Many]) -> None:
    for sql, rows in statements:
        if rows:
            await conn.exec_driver_sql(dollar(sql, conn.dialect.paramstyle), rows)
