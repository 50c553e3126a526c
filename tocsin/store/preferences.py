"""Attention on the SQL store (migration 0005): preferences rows, the per-batch
decision hook of the group commit, quiet periods, and the digest event.

The hot path (``prepare_raw`` on the SQLite writer thread, ``prepare_sql`` on
SQLAlchemy) reads the preferences of a batch's recipients with one ``IN`` query
(plus the publisher-defaults row, user ``""``) inside the batch's transaction: no
cache, so a ``PUT`` on any node applies to the next batch on every node. When no
row comes back it returns at once: the jobs are left as they are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.attention.decide import QUIET_REASONS, attend
from tocsin.events import StreamEvent, user_stream
from tocsin.ids import event_id
from tocsin.store.base import Json
from tocsin.store.batch import Job, PublishJob
from tocsin.store.plan import chunks, dumps
from tocsin.store.tables import events, metadata, streams

if TYPE_CHECKING:
    from tocsin.store.sql import SqlStore

DEFAULTS_USER = ""
"""The row holding the publisher defaults (no user id is empty)."""
DIGEST_KIND = "digest"

preferences = Table(
    "tocsin_preferences",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("prefs", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

periods = Table(
    "tocsin_attention_periods",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("until", BigInteger, primary_key=True),
    Column("since", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
)

_PERIOD_UPSERT = (
    "INSERT INTO tocsin_attention_periods (user_id, until, since, count) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (user_id, until) DO UPDATE "
    "SET count = tocsin_attention_periods.count + excluded.count"
)
_TIMER_INSERT = (
    "INSERT INTO tocsin_timers (id, kind, key, payload, due_at, lease_owner, lease_until, "
    "attempts, created_at) VALUES (?, ?, ?, ?, ?, NULL, 0, 0, ?) ON CONFLICT (id) DO NOTHING"
)


def _select_sql(n: int) -> str:
    return ("SELECT user_id, prefs FROM tocsin_preferences WHERE user_id IN ("
            + ", ".join(["?"] * n) + ")")


def _dollar(sql: str, paramstyle: str) -> str:
    if not paramstyle.endswith("dollar"):
        return sql
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "")
                   for i, p in enumerate(parts))


def _users(jobs: list[Job]) -> list[str]:
    users: dict[str, None] = {DEFAULTS_USER: None}
    for job in jobs:
        if isinstance(job, PublishJob):
            users.update(dict.fromkeys(job.users))
    return list(users) if len(users) > 1 else []


def _writes(periods_: dict[tuple[str, int], tuple[int, int]], now: int
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    ups, timers = [], []
    for (user, until), (since, n) in sorted(periods_.items()):
        ups.append((user, until, since, n))
        timers.append((f"digest:{user}:{until}", DIGEST_KIND, user,
                       dumps({"until": until}), until, now))
    return ups, timers


Step = tuple[str, tuple[Any, ...]]
"""One statement of the hook (``?`` placeholders) and its parameters."""


def _hook(jobs: list[Job], now: int, clock_now: int
          ) -> Generator[Step, list[tuple[Any, ...]], None]:
    """The attention hook of a batch, written once for both write paths: it yields
    each statement and is sent back its rows (:func:`prepare_raw` and
    :func:`prepare_sql` only execute). One ``IN`` query per 1000 recipients (plus
    the defaults row); nothing else when no row comes back; during quiet periods a
    period upsert and a digest timer per (user, period)."""
    users = _users(jobs)
    if not users:
        return
    rows: dict[str, str] = {}
    for chunk in chunks(users):
        got = yield _select_sql(len(chunk)), tuple(chunk)
        rows.update({str(r[0]): str(r[-1]) for r in got})
    for job in jobs:
        if isinstance(job, PublishJob):
            job.skipped = job.silent = None
    if not rows:
        return
    ups, timers = _writes(attend(jobs, rows, clock_now), now)
    for params in ups:
        yield _PERIOD_UPSERT, params
    for params in timers:
        yield _TIMER_INSERT, params


def prepare_raw(conn: sqlite3.Connection, jobs: list[Job], now: int, clock_now: int) -> None:
    """The decision for a batch on the SQLite writer's connection (in its transaction)."""
    steps = _hook(jobs, now, clock_now)
    try:
        sql, params = next(steps)
        while True:
            sql, params = steps.send(conn.execute(sql, params).fetchall())
    except StopIteration:
        pass


async def prepare_sql(conn: AsyncConnection, jobs: list[Job], now: int, clock_now: int) -> None:
    """:func:`prepare_raw` through SQLAlchemy (PostgreSQL, idempotent and grouped
    publishes)."""
    style = conn.dialect.paramstyle
    steps = _hook(jobs, now, clock_now)
    try:
        sql, params = next(steps)
        while True:
            res = await conn.exec_driver_sql(_dollar(sql, style), params)
            sql, params = steps.send(list(res.all()) if res.returns_rows else [])
    except StopIteration:
        pass


async def forget_dismissed(conn: AsyncConnection, user: str,
                           gone: list[tuple[str | None, int]]) -> None:
    """``gone``: ``(silent_reason, created_at)`` of notifications ``user`` just
    dismissed (in ``conn``'s transaction). Each one that arrived silently because of
    a quiet period whose digest is not written yet is taken out of that period's
    count. Its period is the user's pending digest timer created last at or before
    the notification (the timer is created with the period's first silent
    notification, in the same transaction, with the same ``now``)."""
    from tocsin.store.timers import timers

    t = timers.c
    for reason, created_at in gone:
        if reason not in QUIET_REASONS:
            continue
        row = (await conn.execute(
            select(t.payload).where(t.kind == DIGEST_KIND, t.key == user,
                                    t.created_at <= created_at)
            .order_by(t.created_at.desc()).limit(1))).first()
        if row is None:
            continue
        until = int(orjson.loads(row[0])["until"])
        c = periods.c
        await conn.execute(update(periods).where(
            c.user_id == user, c.until == until, c.count > 0).values(count=c.count - 1))


class SqlPreferenceStore:
    """Preferences, publisher defaults and digests on a :class:`SqlStore`."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def get(self, user: str) -> Json | None:
        p = preferences.c
        async with self.store._read() as conn:
            row = (await conn.execute(select(p.prefs).where(p.user_id == user))).first()
        return orjson.loads(row[0]) if row is not None else None

    async def put(self, user: str, prefs: Json, now: int) -> None:
        p = preferences.c
        stmt = self.store._insert(preferences).values(
            user_id=user, prefs=dumps(prefs), updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[p.user_id], set_={"prefs": stmt.excluded.prefs,
                                              "updated_at": stmt.excluded.updated_at})
        async with self.store._write() as conn:
            await conn.execute(stmt)

    async def latest_digest(self, user: str) -> Json | None:
        e, s = events.c, streams.c
        stream = user_stream(user)
        q = (select(e.seq, e.data, s.epoch)
             .select_from(events.join(streams, s.key == e.stream))
             .where(and_(e.stream == stream, e.name == DIGEST_KIND))
             .order_by(e.seq.desc()).limit(1))
        async with self.store._read() as conn:
            row = (await conn.execute(q)).first()
        if row is None:
            return None
        data: Json = orjson.loads(row.data)
        data["eventId"] = event_id(row.epoch, row.seq)
        return data

    async def write_digest(self, user: str, until: int, now: int) -> StreamEvent | None:
        """End of a quiet period: remove its row and, if anything arrived silently in
        it, append one ``digest`` event; once, however often the timer runs."""
        c = periods.c
        async with self.store._write() as conn:
            row = (await conn.execute(
                delete(periods).where(c.user_id == user, c.until == until)
                .returning(c.since, c.count))).first()
            if row is None or int(row[1]) <= 0:
                return None
            since, count = int(row[0]), int(row[1])
            stream = user_stream(user)
            alloc = (await self.store._allocate(conn, {stream: 1}))[stream]
            text = dumps({"count": count, "since": since, "until": until})
            await conn.execute(events.insert().values(
                stream=stream, seq=alloc.first, name=DIGEST_KIND, data=text, created_at=now))
        return StreamEvent(stream, alloc.first, DIGEST_KIND, text, alloc.epoch)

