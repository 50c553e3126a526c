"""The SQLite group-commit writer: a whole batch in one call on one thread.

Why it exists (measured; ARCHITECTURE.md, "Performance decisions"): through
SQLAlchemy + aiosqlite, a batch of publishes costs one thread hand-off per
statement and per fetch plus statement compilation, and that, not SQLite, was
most of the server CPU per notification (426 -> 150 us per unicast notification
with this writer, about 3x cheaper). Here the batch (seq upsert, both multi-row
inserts, commit) runs as one function on the store's writer thread. It issues the
same SQL as the SQLAlchemy path: the allocation statements and row planning come
from ``plan.py``, the insert column lists from ``tables.py``. Everything else
(reads, read state, idempotent publishes, migrations) stays on SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

from tocsin.store.batch import Job, JobResult
from tocsin.store.hooks import NO_HOOK, BatchHook, run_many_raw, run_raw
from tocsin.store.plan import Allocation, allocated, plan_rows, stream_counts, upsert_statements
from tocsin.store.tables import events, insert_sql, notifications

NOTE_INSERT = insert_sql(notifications)
EVENT_INSERT = insert_sql(events)


class _Executes(Protocol):
    def execute(self, sql: str, /) -> object: ...


def apply_pragmas(cursor: _Executes, synchronous: str) -> None:
    """The settings of every Tocsin SQLite connection (SQLAlchemy's and the writer's)."""
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA busy_timeout=10000")


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    # Used only from the writer thread after this call; autocommit mode, since
    # every batch opens its own BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    apply_pragmas(conn, synchronous)
    return conn


def allocate(conn: sqlite3.Connection, counts: dict[str, int]) -> dict[str, Allocation]:
    """``Database.allocate`` on the raw connection: the same statements and rows."""
    out: dict[str, Allocation] = {}
    for sql, params in upsert_statements(counts, "sqlite", "qmark"):
        out.update(allocated(conn.execute(sql, params).fetchall(), counts))
    return out


def write_batch(conn: sqlite3.Connection, jobs: list[Job], now: int,
                clock_now: int | None = None, hook: BatchHook = NO_HOOK) -> list[JobResult]:
    """One group-commit transaction (runs on the writer thread); ``clock_now``: the
    attention clock (quiet hours, DND); ``hook``: the store's publish hook."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        run_raw(conn, hook.decide(jobs, now, now if clock_now is None else clock_now))
        note_rows, event_rows, results = plan_rows(
            jobs, allocate(conn, stream_counts(jobs)), now, positional=True)
        if note_rows:
            conn.executemany(NOTE_INSERT, note_rows)
        if event_rows:
            conn.executemany(EVENT_INSERT, event_rows)
        run_many_raw(conn, hook.after_ids(jobs, results, now))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results
