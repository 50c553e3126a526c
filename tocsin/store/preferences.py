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

from tocsin.attention.decide import QUIET_REASONS, Due, attend
from tocsin.attention.model import RANK
from tocsin.events import StreamEvent, user_stream
from tocsin.ids import event_id
from tocsin.store.base import Json, PublishResult
from tocsin.store.batch import Job, JobResult, PublishJob
from tocsin.store.plan import Allocation, chunks, dumps
from tocsin.store.tables import events, metadata, streams

if TYPE_CHECKING:
    from tocsin.store.db import Database

DEFAULTS_USER = ""
"""The row holding the publisher defaults (no user id is empty)."""
DIGEST_KIND = "digest"
PUSH_KIND = "push"
"""Timer ``push:<notification id>`` (payload ``{"user"}``): push it to the user's
devices unless they have seen it (tocsin/reach)."""
EMAIL_KIND = "email"
"""Timer ``email:<notification id>`` (payload ``{"user"}``): email it if still unread."""

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


def _select_reachable_sql(n: int, email: bool) -> str:
    marks = ", ".join(["?"] * n)
    if email:
        return ("SELECT user_id FROM tocsin_users WHERE email IS NOT NULL AND user_id IN ("
                + marks + ")")
    return ("SELECT DISTINCT user_id FROM tocsin_push_subscriptions WHERE user_id IN ("
            + marks + ")")


def _may_reach(jobs: list[Job]) -> bool:
    """Whether the built-in preferences push any of ``jobs`` (high and urgent)."""
    return any(isinstance(j, PublishJob) and RANK.get(j.note.priority, 0) >= RANK["high"]
               for j in jobs)


def reach_timers(jobs: list[Job], results: list[JobResult], now: int
                 ) -> list[tuple[Any, ...]]:
    """The push/email timers of a batch (``_TIMER_INSERT`` parameters), once the
    notification ids are known: written in the publish's own transaction, so a
    notification stored is a notification that will be pushed or emailed (or found
    seen), whichever node dies when."""
    out: list[tuple[Any, ...]] = []
    for job, res in zip(jobs, results, strict=True):
        if not isinstance(job, PublishJob) or not job.reach or not isinstance(res, PublishResult):
            continue
        n = 0
        for u, (push_due, email_due) in job.reach.items():
            nid = res.ids.get(u)
            if nid is None:
                continue
            payload = dumps({"user": u})
            if push_due is not None:
                out.append((f"push:{nid}", PUSH_KIND, nid, payload, push_due, now))
                n += 1
            if email_due is not None:
                out.append((f"email:{nid}", EMAIL_KIND, nid, payload, email_due, now))
                n += 1
        res.reached = n
    return out


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
    the defaults row); nothing else when no row comes back and nothing is high or
    urgent; during quiet periods a period upsert and a digest timer per (user,
    period). Recipients the preferences let Tocsin reach beyond the tab are kept
    (``job.reach``) only if they have a push subscription / an email address (one
    ``IN`` query each, only when there are candidates)."""
    users = _users(jobs)
    if not users:
        return
    rows: dict[str, str] = {}
    for chunk in chunks(users):
        got = yield _select_sql(len(chunk)), tuple(chunk)
        rows.update({str(r[0]): str(r[-1]) for r in got})
    for job in jobs:
        if isinstance(job, PublishJob):
            job.skipped = job.silent = job.reach = None
    if not rows and not _may_reach(jobs):
        return
    reach_out: dict[int, dict[str, Due]] = {}
    periods_ = attend(jobs, rows, clock_now, reach_out)
    if reach_out:
        yield from _keep_reachable(jobs, reach_out)
    ups, timers = _writes(periods_, now)
    for params in ups:
        yield _PERIOD_UPSERT, params
    for params in timers:
        yield _TIMER_INSERT, params


def _keep_reachable(jobs: list[Job], reach_out: dict[int, dict[str, Due]]
                    ) -> Generator[Step, list[tuple[Any, ...]], None]:
    wanted: tuple[set[str], set[str]] = (set(), set())
    for per_user in reach_out.values():
        for u, due in per_user.items():
            for channel in (0, 1):
                if due[channel] is not None:
                    wanted[channel].add(u)
    have: tuple[set[str], set[str]] = (set(), set())
    for channel in (0, 1):
        for chunk in chunks(sorted(wanted[channel])):
            got = yield _select_reachable_sql(len(chunk), channel == 1), tuple(chunk)
            have[channel].update(str(r[0]) for r in got)
    for i, per_user in reach_out.items():
        kept: dict[str, Due] = {}
        for u, (push_due, email_due) in per_user.items():
            due = (push_due if u in have[0] else None, email_due if u in have[1] else None)
            if due != (None, None):
                kept[u] = due
        job = jobs[i]
        assert isinstance(job, PublishJob)
        job.reach = kept or None


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


def write_reach_raw(conn: sqlite3.Connection, jobs: list[Job], results: list[JobResult],
                    now: int) -> None:
    """The batch's push/email timers on the SQLite writer's connection."""
    params = reach_timers(jobs, results, now)
    if params:
        conn.executemany(_TIMER_INSERT, params)


async def write_reach_sql(conn: AsyncConnection, jobs: list[Job], results: list[JobResult],
                          now: int) -> None:
    """:func:`write_reach_raw` through SQLAlchemy."""
    params = reach_timers(jobs, results, now)
    if params:
        await conn.exec_driver_sql(_dollar(_TIMER_INSERT, conn.dialect.paramstyle), params)


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

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user: str) -> Json | None:
        p = preferences.c
        async with self.db.read() as conn:
            row = (await conn.execute(select(p.prefs).where(p.user_id == user))).first()
        return orjson.loads(row[0]) if row is not None else None

    async def put(self, user: str, prefs: Json, now: int) -> None:
        p = preferences.c
        stmt = self.db.insert(preferences).values(
            user_id=user, prefs=dumps(prefs), updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[p.user_id], set_={"prefs": stmt.excluded.prefs,
                                              "updated_at": stmt.excluded.updated_at})
        async with self.db.write() as conn:
            await conn.execute(stmt)

    async def put_announced(self, user: str, prefs: Json, announced: Json
                            ) -> list[StreamEvent]:
        """Store a user's preferences and, in the same transaction, a ``preferences``
        event ``{preferences: announced}`` in their stream: every tab and device
        shows the change at once (one source of truth; a client that was away gets it
        in its replay)."""
        p = preferences.c

        async def apply(conn: AsyncConnection, _: Allocation, now: int
                        ) -> tuple[list[str], Json]:
            stmt = self.db.insert(preferences).values(
                user_id=user, prefs=dumps(prefs), updated_at=now)
            stmt = stmt.on_conflict_do_update(
                index_elements=[p.user_id], set_={"prefs": stmt.excluded.prefs,
                                                  "updated_at": stmt.excluded.updated_at})
            await conn.execute(stmt)
            return [user], {"preferences": announced}

        change = await self.db.change_state(user, "preferences", apply)
        return change.events if change is not None else []

    async def latest_digest(self, user: str) -> Json | None:
        e, s = events.c, streams.c
        stream = user_stream(user)
        q = (select(e.seq, e.data, s.epoch)
             .select_from(events.join(streams, s.key == e.stream))
             .where(and_(e.stream == stream, e.name == DIGEST_KIND))
             .order_by(e.seq.desc()).limit(1))
        async with self.db.read() as conn:
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
        async with self.db.write() as conn:
            row = (await conn.execute(
                delete(periods).where(c.user_id == user, c.until == until)
                .returning(c.since, c.count))).first()
            if row is None or int(row[1]) <= 0:
                return None
            since, count = int(row[0]), int(row[1])
            stream = user_stream(user)
            alloc = (await self.db.allocate(conn, {stream: 1}))[stream]
            text = dumps({"count": count, "since": since, "until": until})
            await conn.execute(events.insert().values(
                stream=stream, seq=alloc.first, name=DIGEST_KIND, data=text, created_at=now))
        return StreamEvent(stream, alloc.first, DIGEST_KIND, text, alloc.epoch)

