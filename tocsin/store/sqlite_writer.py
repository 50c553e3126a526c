"""The SQLite group-commit writer: a whole batch in one call on one thread.

Measured reason (bench/README.md, profile of the unicast scenario): through
SQLAlchemy + aiosqlite, a batch of publishes costs one thread hand-off per
statement and per fetch plus statement compilation, and that, not SQLite, was
most of the server CPU per notification. Here the batch (seq upsert, both
multi-row inserts, commit) runs as one function on the store's writer thread,
with the same SQL the SQLAlchemy path issues. Everything else (reads, read
state, idempotent publishes, migrations) stays on SQLAlchemy.
"""

from __future__ import annotations

import sqlite3

from tocsin.store.base import Json
from tocsin.store.tables import upsert_sql

UPSERT_CHUNK = 300  # rows per upsert statement (2 parameters each)

NOTE_INSERT = (
    "INSERT INTO tocsin_notifications (id, user_id, seq, type, title, body, priority, "
    "group_key, url, actor, source, data, created_at, expires_at, read_at) VALUES "
    "(:id, :user_id, :seq, :type, :title, :body, :priority, :group_key, :url, :actor, "
    ":source, :data, :created_at, :expires_at, :read_at)"
)
EVENT_INSERT = (
    "INSERT INTO tocsin_events (stream, seq, name, data, created_at) "
    "VALUES (:stream, :seq, :name, :data, :created_at)"
)


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    # Used only from the writer thread after this call; autocommit mode, since
    # every batch opens its own BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def allocate(conn: sqlite3.Connection, counts: dict[str, int]) -> dict[str, int]:
    """Like ``SqlStore._allocate``: each stream's first new seq, keys in sorted order."""
    first: dict[str, int] = {}
    keys = sorted(counts)
    for i in range(0, len(keys), UPSERT_CHUNK):
        chunk = keys[i : i + UPSERT_CHUNK]
        params: list[object] = []
        for k in chunk:
            params += (k, counts[k])
        for key, head in conn.execute(upsert_sql(len(chunk), "qmark"), params).fetchall():
            first[key] = head - counts[key] + 1
    return first


def insert_rows(conn: sqlite3.Connection, note_rows: list[Json], event_rows: list[Json]) -> None:
    if note_rows:
        conn.executemany(NOTE_INSERT, note_rows)
    if event_rows:
        conn.executemany(EVENT_INSERT, event_rows)
