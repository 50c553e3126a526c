"""The delivery trail's rows (migration 0009): what happened to a notification that
its own row does not already say. Stored, the attention decision of a delivered
copy, grouping and read state are read from ``tocsin_notifications`` (never written
twice); ``tocsin_trail`` holds the rest (channel outcomes, escalation steps,
read-state history, skipped recipients), written in batches by the trail's background
flush (``tocsin/trail/``) and pruned with the events' retention.

The first write of each copy to a stream (live, or caught up from the store) is the
one step per delivered notification, so it has its own narrow table
(``tocsin_trail_writes``, migration 0012): keyed by the notification id alone (on
SQLite without a rowid: one B-tree, appended at its end since ids start with their
creation time), first write wins by ``ON CONFLICT DO NOTHING`` whichever node or
restart writes it, pruned by id. Its rows ride along with the group commit
(``store/riders.py``) rather than a transaction of their own.

Sizes (docs/trail.md, "Size"): a ``tocsin_trail`` row about 140 bytes with its indexes
plus its ``detail`` JSON; a ``tocsin_trail_writes`` row about 46 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    delete,
    select,
)

from tocsin.store.db import Database
from tocsin.store.hooks import run_many_sql
from tocsin.store.tables import TENANT, idempotency, metadata, notifications

trail = Table(
    "tocsin_trail",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String(40)),  # NULL: a recipient the publish skipped
    Column("user_id", String(200), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("by", String(200)),
    Column("detail", Text, nullable=False),
)
# Two indexes only (each costs every insert): a notification's steps, and the prune.
# A user's skipped copies (rare) are found through the first (``notification_id``
# NULL) and filtered by user.
Index("tocsin_trail_notification", trail.c.notification_id)
Index("tocsin_trail_at", trail.c.at)

writes = Table(
    "tocsin_trail_writes",
    metadata,
    Column("notification_id", String(40), primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("transport", String(8), nullable=False),  # sse, ws, poll
    Column("caught_up", SmallInteger, nullable=False),  # 1: read from the store, not live
    sqlite_with_rowid=False,
)
WRITE_INSERT = ("INSERT INTO tocsin_trail_writes (notification_id, at, transport, caught_up) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (notification_id) DO NOTHING")
"""A batch of first writes, ``(notification id, ms, transport, caught up 0/1)`` rows:
run by the group commit it rides with (``store/riders.py``) or :func:`append_writes`."""
WRITE_KINDS = ("stream.live", "stream.caught_up")

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Step:
    notification: str | None
    user: str
    at: int
    kind: str
    by: str | None
    detail: Json


@dataclass(frozen=True, slots=True)
class NoteRow:
    """What a notification row says of its journey (derived, never written again)."""

    id: str
    user: str
    type: str
    priority: str
    created_at: int
    read_at: int | None
    silent_reason: str | None
    group_count: int | None
    snoozed_until: int | None


_INSERT = ("INSERT INTO tocsin_trail (notification_id, user_id, at, kind, \"by\", detail) "
           "VALUES (?, ?, ?, ?, ?, ?)")


async def append(db: Database, steps: Sequence[Step]) -> None:
    """One executemany for a whole batch (the flush's), straight to the driver: no
    per-row compilation (about 2/3 of the cost through SQLAlchemy Core)."""
    if not steps:
        return
    dumps = orjson.dumps
    rows = [(s.notification, s.user[:200], s.at, s.kind[:40], s.by[:200] if s.by else None,
             dumps(s.detail).decode()) for s in steps]
    async with db.write() as conn:
        await run_many_sql(conn, [(_INSERT, rows)])


async def append_writes(db: Database, rows: Sequence[tuple[str, int, str, int]]) -> None:
    """First writes (:data:`WRITE_INSERT` rows) in a transaction of their own: when no
    group commit is running to take them, and at shutdown."""
    if rows:
        async with db.write() as conn:
            await run_many_sql(conn, [(WRITE_INSERT, list(rows))])


def _step(row: Any) -> Step:
    try:
        detail = orjson.loads(row.detail)
    except orjson.JSONDecodeError:
        detail = {}
    return Step(row.notification_id, row.user_id, int(row.at), row.kind, row.by,
                detail if isinstance(detail, dict) else {})


_NOTE_COLS = (notifications.c.id, notifications.c.user_id, notifications.c.type,
              notifications.c.priority, notifications.c.created_at, notifications.c.read_at,
              notifications.c.silent_reason, notifications.c.group_count,
              notifications.c.snoozed_until)


def _note(row: Any) -> NoteRow:
    return NoteRow(row.id, row.user_id, row.type, row.priority, int(row.created_at),
                   row.read_at, row.silent_reason, row.group_count, row.snoozed_until)


async def notes(db: Database, ids: Sequence[str]) -> list[NoteRow]:
    out: list[NoteRow] = []
    async with db.read() as conn:
        for i in range(0, len(ids), 500):
            rows = await conn.execute(select(*_NOTE_COLS).where(
                notifications.c.id.in_(list(ids[i:i + 500]))))
            out.extend(_note(r) for r in rows)
    return out


async def notes_of_user(db: Database, user: str, since: int, limit: int) -> list[NoteRow]:
    n = notifications.c
    async with db.read() as conn:
        rows = await conn.execute(select(*_NOTE_COLS).where(
            n.user_id == user, n.created_at >= since).order_by(n.seq.desc()).limit(limit))
        return [_note(r) for r in rows]


async def steps_of(db: Database, ids: Sequence[str]) -> list[Step]:
    out: list[Step] = []
    t = trail.c
    async with db.read() as conn:
        for i in range(0, len(ids), 500):
            rows = await conn.execute(select(trail).where(
                t.notification_id.in_(list(ids[i:i + 500]))).order_by(t.at, t.id))
            out.extend(_step(r) for r in rows)
    return out


async def writes_of(db: Database, ids: Sequence[str]) -> dict[str, tuple[int, str, bool]]:
    """The first write of each of ``ids`` that has one: ``(ms, transport, caught up)``."""
    out: dict[str, tuple[int, str, bool]] = {}
    w = writes.c
    async with db.read() as conn:
        for i in range(0, len(ids), 500):
            rows = await conn.execute(select(writes).where(
                w.notification_id.in_(list(ids[i:i + 500]))))
            out.update((r.notification_id, (int(r.at), r.transport, bool(r.caught_up)))
                       for r in rows)
    return out


def write_step(nid: str, user: str, write: tuple[int, str, bool]) -> Step:
    """A first write as the trail's ``stream.live``/``stream.caught_up`` step."""
    at, transport, caught_up = write
    return Step(nid, user, at, WRITE_KINDS[1 if caught_up else 0], None, {"transport": transport})


async def skipped_of_user(db: Database, user: str, since: int, limit: int) -> list[Step]:
    """The steps of copies that were never stored (``skipped: preferences``)."""
    t = trail.c
    async with db.read() as conn:
        rows = await conn.execute(select(trail).where(
            t.user_id == user, t.at >= since, t.notification_id.is_(None))
            .order_by(t.at.desc(), t.id.desc()).limit(limit))
        return [_step(r) for r in rows]


async def publish_record(db: Database, key: str) -> Json | None:
    """The reply a publish with idempotency key ``key`` kept (its ids, skipped, silent),
    and when (``createdAt``)."""
    i = idempotency.c
    async with db.read() as conn:
        row = (await conn.execute(select(i.result, i.created_at).where(
            i.publisher == TENANT, i.key == key))).first()
    if row is None or not row.result:
        return None
    rec = orjson.loads(row.result)
    if not isinstance(rec, dict):
        return None
    rec["createdAt"] = int(row.created_at)
    return rec


async def prune(db: Database, cutoff: int) -> int:
    """Steps recorded before ``cutoff`` (ms), and the first writes of notifications
    created before it (an id starts with its creation time: ``ids.new_id``)."""
    async with db.write() as conn:
        result = await conn.execute(delete(trail).where(trail.c.at < cutoff))
        gone = await conn.execute(delete(writes).where(
            writes.c.notification_id < f"{max(cutoff, 0):012x}"))
        return int(result.rowcount or 0) + int(gone.rowcount or 0)
