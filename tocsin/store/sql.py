"""The SQL store shared by SQLite and PostgreSQL (SQLAlchemy 2 async Core).

Dialect differences live in ``sqlite.py`` and ``postgres.py``: engine options,
how writers are serialised, and the upsert construct.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.errors import StoreUnavailable
from tocsin.events import StreamEvent, topic_stream, user_stream
from tocsin.ids import new_id, now_ms
from tocsin.store.base import (
    Change,
    Json,
    ListQuery,
    NewNotification,
    NewTopicEvent,
    Page,
    PublishResult,
)
from tocsin.store.batch import GroupCommit, Job, JobResult, PublishJob, TopicJob
from tocsin.store.shape import notification_json, row_json
from tocsin.store.tables import events, idempotency, notifications, streams, upsert_sql

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
CHUNK = 1000  # rows per multi-row statement: stays under every driver's parameter cap


class _NoChange(Exception):
    """Raised inside a write transaction to roll it back (seqs allocated are returned)."""

    def __init__(self, result: Any = None) -> None:
        self.result = result


def _chunks(items: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _activity_json(topic: str, seq: int, event: NewTopicEvent, now: int) -> Json:
    data: Json = {"id": str(seq), "topic": topic, "type": event.type,
                  "title": event.title, "body": event.body}
    if event.actor is not None:
        data["actor"] = event.actor
    if event.data is not None:
        data["data"] = event.data
    data["timestamp"] = now
    return data


def _window(seq: Any, query: ListQuery, conds: list[Any]) -> Any:
    """Cursor conditions shared by the listings: ``since`` pages forward (oldest first),
    otherwise newest first, ``before`` an exclusive cursor. Returns the ordering."""
    if query.since is not None:
        conds.append(seq > query.since)
        return seq.asc()
    if query.before is not None:
        conds.append(seq < query.before)
    return seq.desc()


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, OperationalError | InterfaceError
        )
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


# Statements every (re)connecting stream runs, built once: constructing a select per
# call made SQLAlchemy regenerate its cache key each time, which was the largest
# cost of a reconnect storm in the profile.
_EVENTS_AFTER = (
    select(events.c.seq, events.c.name, events.c.data)
    .where(events.c.stream == bindparam("stream"), events.c.seq > bindparam("after"))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)
_STREAM_BOUNDS = select(streams.c.pruned_upto, streams.c.last_seq).where(
    streams.c.key == bindparam("key")
)


def stream_counts(jobs: list[Job]) -> dict[str, int]:
    """How many seqs each stream needs for ``jobs``."""
    counts: dict[str, int] = {}
    for job in jobs:
        keys = ([user_stream(u) for u in job.users] if isinstance(job, PublishJob)
                else [topic_stream(job.topic)])
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    return counts


def plan_rows(
    jobs: list[Job], next_seq: dict[str, int], now: int
) -> tuple[list[Json], list[Json], list[JobResult]]:
    """The notification and event rows for ``jobs``, given each stream's first free seq
    (consumed in job order), and each job's result."""
    note_rows: list[Json] = []
    event_rows: list[Json] = []
    results: list[JobResult] = []
    for job in jobs:
        if isinstance(job, TopicJob):
            stream = topic_stream(job.topic)
            seq = next_seq[stream]
            next_seq[stream] = seq + 1
            ev = StreamEvent(stream, seq, "activity",
                             _dumps(_activity_json(job.topic, seq, job.event, now)))
            event_rows.append({"stream": stream, "seq": seq, "name": ev.name,
                               "data": ev.data, "created_at": now})
            results.append(ev)
            continue
        note = job.note
        if note.ttl_ms is not None and note.expires_at is None:
            note = replace(note, expires_at=now + note.ttl_ms)
        data_text = _dumps(note.data) if note.data is not None else None
        ids: dict[str, str] = {}
        out: list[StreamEvent] = []
        for u in job.users:
            stream = user_stream(u)
            seq = next_seq[stream]
            next_seq[stream] = seq + 1
            nid = new_id()
            ids[u] = nid
            text = _dumps(notification_json(nid, seq, note, now))
            note_rows.append({
                "id": nid, "user_id": u, "seq": seq, "type": note.type,
                "title": note.title, "body": note.body, "priority": note.priority,
                "group_key": note.group_key, "url": note.url, "actor": note.actor,
                "source": note.source, "data": data_text, "created_at": now,
                "expires_at": note.expires_at, "read_at": None,
            })
            event_rows.append({"stream": stream, "seq": seq, "name": "notification",
                               "data": text, "created_at": now})
            out.append(StreamEvent(stream, seq, "notification", text))
        results.append(PublishResult(ids=ids, events=out))
    return note_rows, event_rows, results


class SqlStore:
    """Implements :class:`tocsin.store.base.Store` on SQLAlchemy Core."""

    url: str
    engine: AsyncEngine
    _insert: Callable[..., Any]  # dialect insert() with on_conflict_* support

    batch_inflight = 1
    """Concurrent group-commit transactions (SQLite has one writer anyway)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._batcher = GroupCommit(self._write_batch, self.batch_inflight)

    # -- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        await self._prepare()
        try:
            await self.migrate()
        except Exception as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable(f"cannot reach the database: {exc}") from exc
            raise

    async def _prepare(self) -> None:
        """Create the engine (and schema, where the dialect has them)."""
        raise NotImplementedError

    async def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        def upgrade(sync_conn: Any) -> None:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, "head")

        async with self.engine.connect() as conn:
            await self._lock_migrations(conn)
            await conn.run_sync(upgrade)
            await conn.commit()

    async def _lock_migrations(self, conn: AsyncConnection) -> None:
        """Keep two nodes starting at once from migrating together (dialect hook)."""

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(select(1))

    # -- transactions ----------------------------------------------------------------
    def _write_lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._write_lock(), self.engine.begin() as conn:
                yield conn
        except (DBAPIError, OSError, TimeoutError) as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable() from exc
            raise

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (DBAPIError, OSError, TimeoutError) as exc:
            if _is_unavailable(exc):
                raise StoreUnavailable() from exc
            raise

    async def _allocate(self, conn: AsyncConnection, counts: dict[str, int]) -> dict[str, int]:
        """Reserve ``counts[stream]`` seqs per stream; returns each stream's first new seq.

        Keys are locked in sorted order so concurrent batches cannot deadlock.
        """
        first: dict[str, int] = {}
        paramstyle = conn.dialect.paramstyle
        for chunk in _chunks(sorted(counts)):
            params: list[Any] = []
            for k in chunk:
                params += (k, counts[k])
            rows: Sequence[Any] = (
                await conn.exec_driver_sql(upsert_sql(len(chunk), paramstyle), tuple(params))
            ).all()
            for key, head in rows:
                first[key] = int(head) - counts[key] + 1
        return first

    async def _unread(self, conn: AsyncConnection, user: str, now: int) -> int:
        n = notifications.c
        q = select(func.count()).where(
            n.user_id == user,
            n.read_at.is_(None),
            (n.expires_at.is_(None)) | (n.expires_at > now),
        )
        return int((await conn.execute(q)).scalar_one())

    async def _append(
        self, conn: AsyncConnection, stream: str, seq: int, name: str, data: Json, now: int
    ) -> StreamEvent:
        text = _dumps(data)
        await conn.execute(
            events.insert().values(stream=stream, seq=seq, name=name, data=text, created_at=now)
        )
        return StreamEvent(stream, seq, name, text)

    # -- publishing --------------------------------------------------------------------
    async def publish(
        self,
        publisher: str,
        recipients: list[str],
        note: NewNotification,
        idempotency_key: str | None = None,
    ) -> PublishResult:
        users = list(dict.fromkeys(recipients))  # de-duplicate, keep order
        if idempotency_key is None:
            # Group commit: publishes that arrive while a transaction is in flight are
            # written together in the next one (one fsync, multi-row inserts).
            result = await self._batcher.submit(PublishJob(users, note))
            assert isinstance(result, PublishResult)
            return result
        now = now_ms()
        try:
            async with self._write() as conn:
                earlier = await self._claim_idempotency(conn, publisher, idempotency_key, now)
                if earlier is not None:
                    raise _NoChange(earlier)
                (result,) = await self._insert_jobs(conn, [PublishJob(users, note)], now)
                assert isinstance(result, PublishResult)
                i = idempotency.c
                await conn.execute(
                    update(idempotency)
                    .where(i.publisher == publisher, i.key == idempotency_key)
                    .values(result=_dumps(result.ids))
                )
        except _NoChange as done:
            return PublishResult(ids=done.result, replayed=True)
        return result

    async def _write_batch(self, jobs: list[Job]) -> list[JobResult]:
        """One transaction for several writes (the group commit's unit)."""
        async with self._write() as conn:
            return await self._insert_jobs(conn, jobs, now_ms())

    async def _insert_jobs(
        self, conn: AsyncConnection, jobs: list[Job], now: int
    ) -> list[JobResult]:
        next_seq = await self._allocate(conn, stream_counts(jobs))
        note_rows, event_rows, results = plan_rows(jobs, next_seq, now)
        for rows in _chunks(note_rows):
            await conn.execute(notifications.insert(), list(rows))
        for rows in _chunks(event_rows):
            await conn.execute(events.insert(), list(rows))
        return results

    async def _claim_idempotency(
        self, conn: AsyncConnection, publisher: str, key: str, now: int
    ) -> dict[str, str] | None:
        """Claim ``key`` for this transaction, or return the result stored under it.

        A concurrent transaction with the same key waits on the primary key until the
        first commits, then sees its result.
        """
        i = idempotency.c
        claim = (
            self._insert(idempotency)
            .values(publisher=publisher, key=key, result="", created_at=now)
            .on_conflict_do_nothing()
            .returning(i.key)
        )
        if (await conn.execute(claim)).first() is not None:
            return None
        row = (
            await conn.execute(
                select(i.result, i.created_at).where(i.publisher == publisher, i.key == key)
            )
        ).first()
        if row is not None and row.result and row.created_at >= now - IDEMPOTENCY_WINDOW_MS:
            result: dict[str, str] = orjson.loads(row.result)
            return result
        # Expired (or left empty by a failed writer): take it over.
        await conn.execute(
            update(idempotency)
            .where(i.publisher == publisher, i.key == key)
            .values(result="", created_at=now)
        )
        return None

    async def add_topic_event(self, topic: str, event: NewTopicEvent) -> StreamEvent:
        result = await self._batcher.submit(TopicJob(topic, event))
        assert isinstance(result, StreamEvent)
        return result

    # -- read state --------------------------------------------------------------------
    async def set_read(self, user: str, ids: list[str], read: bool) -> Change | None:
        n = notifications.c
        async with self._read() as conn:
            owned = (
                await conn.execute(
                    select(n.id, n.read_at).where(n.user_id == user, n.id.in_(ids))
                )
            ).all()
        if not owned:
            return None
        if not [r.id for r in owned if (r.read_at is None) == read]:
            return Change(unread_count=await self.unread_count(user), ids=[])
        stream = user_stream(user)
        now = now_ms()
        try:
            async with self._write() as conn:
                seq = (await self._allocate(conn, {stream: 1}))[stream]
                cond = n.read_at.is_(None) if read else n.read_at.is_not(None)
                changed = [
                    row[0]
                    for row in await conn.execute(
                        update(notifications)
                        .where(n.user_id == user, n.id.in_(ids), cond)
                        .values(read_at=now if read else None)
                        .returning(n.id)
                    )
                ]
                if not changed:
                    raise _NoChange()  # lost a race: nothing to announce, give the seq back
                count = await self._unread(conn, user, now)
                ev = await self._append(conn, stream, seq, "read" if read else "unread",
                                        {"ids": changed, "unreadCount": count}, now)
        except _NoChange:
            return Change(unread_count=await self.unread_count(user), ids=[])
        return Change(unread_count=count, ids=changed, events=[ev])

    async def read_all(self, user: str, type: str | None, before: int | None) -> Change:
        n = notifications.c
        stream = user_stream(user)
        now = now_ms()
        try:
            async with self._write() as conn:
                seq = (await self._allocate(conn, {stream: 1}))[stream]
                up_to = seq - 1 if before is None else min(seq - 1, before - 1)
                conds = [n.user_id == user, n.read_at.is_(None), n.seq <= up_to]
                if type is not None:
                    conds.append(n.type == type)
                changed = [
                    row[0]
                    for row in await conn.execute(
                        update(notifications).where(and_(*conds)).values(read_at=now)
                        .returning(n.id)
                    )
                ]
                if not changed:
                    raise _NoChange()
                count = await self._unread(conn, user, now)
                data: Json = {"upTo": str(up_to), "unreadCount": count}
                if type is not None:
                    data["type"] = type
                ev = await self._append(conn, stream, seq, "read_all", data, now)
        except _NoChange:
            return Change(unread_count=await self.unread_count(user), ids=[])
        return Change(unread_count=count, ids=changed, events=[ev])

    async def dismiss(self, user: str, id: str) -> Change | None:
        n = notifications.c
        stream = user_stream(user)
        now = now_ms()
        try:
            async with self._write() as conn:
                seq = (await self._allocate(conn, {stream: 1}))[stream]
                gone = (
                    await conn.execute(
                        delete(notifications).where(n.user_id == user, n.id == id)
                        .returning(n.id)
                    )
                ).first()
                if gone is None:
                    raise _NoChange()
                count = await self._unread(conn, user, now)
                ev = await self._append(conn, stream, seq, "deleted",
                                        {"ids": [id], "unreadCount": count}, now)
        except _NoChange:
            return None
        return Change(unread_count=count, ids=[id], events=[ev])

    # -- queries -----------------------------------------------------------------------
    async def get_notification(self, user: str, id: str) -> Json | None:
        n = notifications.c
        async with self._read() as conn:
            row = (
                await conn.execute(select(notifications).where(n.user_id == user, n.id == id))
            ).first()
        return row_json(row) if row is not None else None

    async def unread_count(self, user: str) -> int:
        async with self._read() as conn:
            return await self._unread(conn, user, now_ms())

    async def _head(self, conn: AsyncConnection, stream: str) -> int:
        head = (
            await conn.execute(select(streams.c.last_seq).where(streams.c.key == stream))
        ).scalar()
        return int(head or 0)

    async def list_notifications(self, user: str, query: ListQuery) -> Page:
        n = notifications.c
        now = now_ms()
        conds = [n.user_id == user, (n.expires_at.is_(None)) | (n.expires_at > now)]
        if query.unread:
            conds.append(n.read_at.is_(None))
        if query.type is not None:
            conds.append(n.type == query.type)
        if query.priority is not None:
            conds.append(n.priority == query.priority)
        if query.source is not None:
            conds.append(n.source == query.source)
        order = _window(n.seq, query, conds)
        async with self._read() as conn:
            # Head first: anything committed after it is also in the stream after it,
            # so a client resuming from this id can get duplicates but never a gap.
            head = await self._head(conn, user_stream(user))
            rows = (
                await conn.execute(
                    select(notifications).where(and_(*conds)).order_by(order)
                    .limit(query.limit + 1)
                )
            ).all()
            count = await self._unread(conn, user, now)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return Page(
            items=[row_json(r) for r in rows],
            next_cursor=str(rows[-1].seq) if more and rows else None,
            last_event_id=str(head),
            unread_count=count,
        )

    async def topic_history(self, topic: str, query: ListQuery) -> Page:
        e = events.c
        stream = topic_stream(topic)
        conds = [e.stream == stream, e.name == "activity"]
        order = _window(e.seq, query, conds)
        async with self._read() as conn:
            head = await self._head(conn, stream)
            rows = (
                await conn.execute(
                    select(e.seq, e.data).where(and_(*conds)).order_by(order)
                    .limit(query.limit + 1)
                )
            ).all()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return Page(
            items=[orjson.loads(r.data) for r in rows],
            next_cursor=str(rows[-1].seq) if more and rows else None,
            last_event_id=str(head),
        )

    # -- replay ------------------------------------------------------------------------
    async def events_after(self, stream: str, after: int, limit: int) -> list[StreamEvent]:
        async with self._read() as conn:
            rows = (
                await conn.execute(_EVENTS_AFTER, {"stream": stream, "after": after,
                                                   "limit": limit})
            ).all()
        return [StreamEvent(stream, r.seq, r.name, r.data) for r in rows]

    async def stream_bounds(self, stream: str) -> tuple[int, int]:
        async with self._read() as conn:
            row = (await conn.execute(_STREAM_BOUNDS, {"key": stream})).first()
        return (0, 0) if row is None else (int(row.pruned_upto), int(row.last_seq))

    async def heads(self, keys: list[str]) -> dict[str, int]:
        s = streams.c
        out: dict[str, int] = {}
        async with self._read() as conn:
            for chunk in _chunks(keys):
                rows = await conn.execute(select(s.key, s.last_seq).where(s.key.in_(chunk)))
                out.update({r.key: int(r.last_seq) for r in rows})
        return out

    async def prune(self, now_ms_: int, retention_ms: int) -> int:
        cutoff = now_ms_ - retention_ms
        e, s, n, i = events.c, streams.c, notifications.c, idempotency.c
        async with self._write() as conn:
            newest_gone = (
                select(func.max(e.seq))
                .where(e.stream == s.key, e.created_at < cutoff)
                .scalar_subquery()
            )
            await conn.execute(
                update(streams)
                .where(select(e.seq).where(e.stream == s.key, e.created_at < cutoff).exists())
                .values(pruned_upto=func.coalesce(newest_gone, s.pruned_upto))
            )
            deleted = await conn.execute(delete(events).where(e.created_at < cutoff))
            await conn.execute(
                delete(notifications).where(n.expires_at.is_not(None), n.expires_at < now_ms_)
            )
            await conn.execute(
                delete(idempotency).where(i.created_at < now_ms_ - IDEMPOTENCY_WINDOW_MS)
            )
            return int(deleted.rowcount or 0)


