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
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import is_, itemgetter
from typing import Any, Protocol

from tocsin.store.batch import Job, JobResult
from tocsin.store.hooks import NO_HOOK, BatchHook, run_many_raw, run_raw
from tocsin.store.plan import Allocation, allocated, plan_rows, stream_counts, upsert_statements
from tocsin.store.tables import events, insert_sql, notifications

NOTE_INSERT = insert_sql(notifications)
EVENT_INSERT = insert_sql(events)
_NOTE_NAMES = tuple(c.name for c in notifications.columns)
_NONES = (None,) * len(_NOTE_NAMES)


@lru_cache(maxsize=256)
def _note_insert(nulls: tuple[bool, ...]) -> tuple[str, Callable[[Sequence[Any]], Any]]:
    """The notification insert for rows whose ``None`` columns are ``nulls``: those
    written as literal ``NULL``, the rest bound, and the getter of the bound values.

    Why: Python's ``sqlite3`` binds a ``None`` parameter through its adapter protocol
    (only exact ``int``/``float``/``str``/``bytearray`` skip it), which looks up
    ``PrepareProtocol.__adapt__`` and formats the ``AttributeError`` it gets: about
    2,000 instructions per ``None``, and a notification row has ten of them (callgrind:
    9 % of a bulk publish's instructions)."""
    kept = [i for i, null in enumerate(nulls) if not null]
    cols = ", ".join(_NOTE_NAMES)
    values = ", ".join("NULL" if null else "?" for null in nulls)
    getter: Callable[[Sequence[Any]], Any] = (
        itemgetter(*kept) if len(kept) > 1 else lambda row: (row[kept[0]],))
    return f"INSERT INTO {notifications.name} ({cols}) VALUES ({values})", getter


def insert_notes(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """``NOTE_INSERT`` of ``rows`` (``plan_rows``' positional rows), without binding
    a single ``None``: one ``executemany`` per pattern of ``None`` columns (a batch
    usually has one or two)."""
    by_shape: dict[tuple[bool, ...], list[Any]] = {}
    for row in rows:
        shape = tuple(map(is_, row, _NONES))
        same = by_shape.get(shape)
        if same is None:
            same = by_shape[shape] = []
        same.append(row)
    for shape, same in by_shape.items():
        sql, getter = _note_insert(shape)
        conn.executemany(sql, map(getter, same))


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
            insert_notes(conn, note_rows)
        if event_rows:
            conn.executemany(EVENT_INSERT, event_rows)
        run_many_raw(conn, hook.after_ids(jobs, results, now))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results
