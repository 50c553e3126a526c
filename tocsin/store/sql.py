"""The SQL store shared by SQLite and PostgreSQL (SQLAlchemy 2 async Core): the
write side (publishing with group commit, idempotency (``idempotency.py``), read
state, pruning) and opening and closing. Queries and replay are in ``reads.py``;
what a batch stores is planned in ``plan.py``.

Dialect differences live in ``sqlite.py`` and ``postgres.py``: engine options,
how writers are serialised, and the upsert construct.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.errors import StoreUnavailable
from tocsin.events import StreamEvent
from tocsin.ids import Position, event_id, now_ms
from tocsin.store.base import (
    Change,
    Json,
    NewNotification,
    NewTopicEvent,
    PublishItem,
    PublishResult,
)
from tocsin.store.batch import GroupCommit, Job, JobResult, PublishJob, TopicJob
from tocsin.store.db import Database, NoChange, is_unavailable
from tocsin.store.grouping import insert_grouped
from tocsin.store.hooks import run_many_sql, run_sql
from tocsin.store.idempotency import (
    IDEMPOTENCY_WINDOW_MS,
    claim,
    keep_reply,
    replayed_result,
    request_hash,
)
from tocsin.store.options import StoreOptions
from tocsin.store.plan import Allocation, chunks, plan_rows, stream_counts
from tocsin.store.reads import SqlReads, check_cursor
from tocsin.store.tables import TENANT, events, idempotency, notifications, streams

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = logging.getLogger("tocsin.store")

class _AlembicChatter(logging.Filter):
    """Drops Alembic's start-up notes about its dialect plugin."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (msg.startswith("Context impl") or msg.startswith("Will assume"))

class SqlStore(SqlReads):
    """Implements :class:`tocsin.store.base.Store` on SQLAlchemy Core."""

    url: str

    batch_inflight = 1
    """Concurrent group-commit transactions (SQLite has one writer anyway)."""

    def __init__(self, url: str, db: Database, options: StoreOptions | None = None) -> None:
        self.url = url
        self.db = db
        """The one way into the database, for this store and its sub-stores."""
        self.options = options or StoreOptions()
        self._clock = self.options.clock
        self._batcher = GroupCommit(self._write_batch, self.batch_inflight)
        self.migrated: list[str] = []
        """The revisions the last :meth:`migrate` (so :meth:`open`) applied, oldest first."""
        self.newer_schema: str | None = None
        """The schema's revision when it is newer than this release knows (a rollback:
        :meth:`migrate` then leaves it as it is)."""

    @property
    def engine(self) -> AsyncEngine:
        return self.db.engine

    # -- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        await self._prepare()
        try:
            await self.migrate()
        except Exception as exc:
            if is_unavailable(exc):
                raise StoreUnavailable(f"cannot reach the database: {exc}") from exc
            raise

    async def _prepare(self) -> None:
        """Create the engine (and schema, where the dialect has them)."""
        raise NotImplementedError

    async def migrate(self, revision: str = "head") -> list[str]:
        """Bring the schema to ``revision`` (the newest by default); the revisions this
        call applied, oldest first (none: it was there already)."""
        # Alembic's notes about itself ("setup plugin …", "Context impl SQLiteImpl.", "Will
        # assume non-transactional DDL.") say nothing an operator needs; "Running upgrade …"
        # lines stay. The plugin lines are logged while alembic is imported.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        from alembic import command
        from alembic.config import Config

        quiet = logging.getLogger("alembic.runtime.migration")
        if not any(isinstance(f, _AlembicChatter) for f in quiet.filters):
            quiet.addFilter(_AlembicChatter())

        from alembic.script import ScriptDirectory

        def upgrade(sync_conn: Any) -> list[str]:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = sync_conn
            before = _revision(sync_conn)
            scripts = ScriptDirectory.from_config(cfg)
            if before is not None and not _known(scripts, before):
                # A newer release migrated this database and this one is running on it:
                # a rollback, or old nodes restarting during a rolling upgrade. Every
                # migration only adds (docs/deploy.md, "Upgrades"), so the schema serves
                # this code as it is; refusing to start would make a rollback impossible.
                log.warning("the database schema is at revision %s, newer than this "
                            "release knows (newest %s): running on it without migrating",
                            before, scripts.get_current_head())
                self.newer_schema = before
                return []
            command.upgrade(cfg, revision)
            after = _revision(sync_conn)
            if after == before or after is None:
                return []
            steps = scripts.iterate_revisions(after, before)
            return [step.revision for step in reversed(list(steps))]

        async with self.engine.connect() as conn:
            await self._lock_migrations(conn)
            applied: list[str] = await conn.run_sync(upgrade)
            await conn.commit()
        self.migrated = applied
        return applied

    async def _lock_migrations(self, conn: AsyncConnection) -> None:
        """Keep two nodes starting at once from migrating together (dialect hook)."""

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.db.read() as conn:
            await conn.execute(select(1))

    # -- publishing --------------------------------------------------------------------
    async def publish(self, publisher: str, recipients: list[str], note: NewNotification,
                      idempotency_key: str | None = None, *,
                      always_inbox: bool = False) -> PublishResult:
        users = list(dict.fromkeys(recipients))  # de-duplicate, keep order
        if idempotency_key is None and note.group_key is not None:
            async with self.db.write() as conn:  # grouping: own transaction (grouping.py)
                return await insert_grouped(self.db, conn, users, note, self._clock(),
                                            self.options.group_window_ms, always_inbox)
        if idempotency_key is None:
            # Group commit: publishes that arrive while a transaction is in flight are
            # written together in the next one (one fsync, multi-row inserts).
            result = await self._batcher.submit(PublishJob(users, note,
                                                           always_inbox=always_inbox))
            assert isinstance(result, PublishResult)
            return result
        now = now_ms()
        body_hash = request_hash(users, note)
        try:
            async with self.db.write() as conn:
                # deployment-wide: every API key is the same publisher (tables.TENANT)
                earlier = await claim(self.db, conn, TENANT, idempotency_key,
                                      body_hash, now)
                if earlier is not None:
                    raise NoChange(earlier)
                if note.group_key is not None:
                    result = await insert_grouped(self.db, conn, users, note, self._clock(),
                                                  self.options.group_window_ms, always_inbox)
                else:
                    (result,) = await self._insert_jobs(
                        conn, [PublishJob(users, note, always_inbox=always_inbox)], now)
                assert isinstance(result, PublishResult)
                await keep_reply(conn, TENANT, idempotency_key, result)
        except NoChange as done:
            return replayed_result(done.result)
        return result

    async def publish_many(self, publisher: str, items: list[PublishItem]
                           ) -> list[PublishResult | Exception]:
        outcomes: list[PublishResult | Exception | None] = [None] * len(items)
        plain: list[int] = []
        own: list[int] = []
        for i, item in enumerate(items):
            if item.idempotency_key is None and item.note.group_key is None:
                plain.append(i)
            else:
                own.append(i)

        async def batched() -> None:
            if not plain:
                return
            # Queued together, so they share the next group commit(s) (batch.py).
            done = await self._batcher.submit_many([
                PublishJob(list(dict.fromkeys(items[i].recipients)), items[i].note)
                for i in plain])
            for i, outcome in zip(plain, done, strict=True):
                assert isinstance(outcome, PublishResult | Exception)
                outcomes[i] = outcome

        async def alone(i: int) -> None:
            item = items[i]
            try:
                outcomes[i] = await self.publish(publisher, item.recipients, item.note,
                                                 item.idempotency_key)
            except Exception as exc:
                outcomes[i] = exc

        await asyncio.gather(batched(), *(alone(i) for i in own))
        return [o if o is not None else RuntimeError("no outcome") for o in outcomes]

    async def _write_batch(self, jobs: list[Job]) -> list[JobResult]:
        """One transaction for several writes (the group commit's unit)."""
        async with self.db.write() as conn:
            return await self._insert_jobs(conn, jobs, now_ms())

    async def _insert_jobs(
        self, conn: AsyncConnection, jobs: list[Job], now: int
    ) -> list[JobResult]:
        await run_sql(conn, self.db.hook.decide(jobs, now, self._clock()))  # attention
        alloc = await self.db.allocate(conn, stream_counts(jobs))
        note_rows, event_rows, results = plan_rows(jobs, alloc, now)
        for rows in chunks(note_rows):
            await conn.execute(notifications.insert(), list(rows))
        for rows in chunks(event_rows):
            await conn.execute(events.insert(), list(rows))
        await run_many_sql(conn, self.db.hook.after_ids(jobs, results, now))  # channels
        return results

    async def add_topic_event(self, topic: str, event: NewTopicEvent) -> StreamEvent:
        result = await self._batcher.submit(TopicJob(topic, event))
        assert isinstance(result, StreamEvent)
        return result

    # -- read state --------------------------------------------------------------------
    async def _unchanged(self, user: str) -> Change:
        return Change(unread_count=await self.unread_count(user), ids=[])

    async def set_read(self, user: str, ids: list[str], read: bool) -> Change | None:
        n = notifications.c
        async with self.db.read() as conn:
            owned = (
                await conn.execute(
                    select(n.id, n.read_at).where(n.user_id == user, n.id.in_(ids))
                )
            ).all()
        if not owned:
            return None
        if not [r.id for r in owned if (r.read_at is None) == read]:
            return await self._unchanged(user)

        async def apply(conn: AsyncConnection, _: Allocation, now: int
                        ) -> tuple[list[str], Json]:
            cond = n.read_at.is_(None) if read else n.read_at.is_not(None)
            changed = [row[0] for row in await conn.execute(
                update(notifications).where(n.user_id == user, n.id.in_(ids), cond)
                .values(read_at=now if read else None).returning(n.id))]
            return changed, {"ids": changed}

        return (await self.db.change_state(
            user, "read" if read else "unread", apply,
            observed="notification.read" if read else "notification.unread")
            or await self._unchanged(user))

    async def read_all(self, user: str, type: str | None, before: Position | None) -> Change:
        n = notifications.c

        async def apply(conn: AsyncConnection, alloc: Allocation, now: int
                        ) -> tuple[list[str], Json]:
            up_to = alloc.first - 1
            if before is not None:  # checked against the epoch under the stream's lock
                up_to = min(up_to, check_cursor(before, alloc.epoch, "before") - 1)
            conds = [n.user_id == user, n.read_at.is_(None), n.seq <= up_to]
            if type is not None:
                conds.append(n.type == type)
            changed = [row[0] for row in await conn.execute(
                update(notifications).where(and_(*conds)).values(read_at=now)
                .returning(n.id))]
            data: Json = {"upTo": event_id(alloc.epoch, up_to)}
            if type is not None:
                data["type"] = type
            return changed, data

        return (await self.db.change_state(user, "read_all", apply,
                                           observed="notification.read")
                or await self._unchanged(user))

    async def dismiss(self, user: str, id: str) -> Change | None:
        n = notifications.c

        async def apply(conn: AsyncConnection, _: Allocation, now: int
                        ) -> tuple[list[str], Json]:
            gone = (await conn.execute(
                delete(notifications).where(n.user_id == user, n.id == id)
                .returning(n.silent_reason, n.created_at))).first()
            if gone is None:
                return [], {}
            # the digest (attention)
            await run_sql(conn, self.db.hook.dismissed(user, [(gone[0], int(gone[1]))]))
            return [id], {"ids": [id]}

        return await self.db.change_state(user, "deleted", apply,
                                          observed="notification.dismissed")

    # -- retention ---------------------------------------------------------------------
    async def prune(self, now_ms_: int, retention_ms: int) -> int:
        cutoff = now_ms_ - retention_ms
        e, s, n, i = events.c, streams.c, notifications.c, idempotency.c
        async with self.db.write() as conn:
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


def _known(scripts: Any, revision: str) -> bool:
    """Whether ``revision`` is one of this release's migrations."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return scripts.get_revision(revision) is not None
    except (CommandError, RevisionError):  # alembic wraps the one in the other
        return False


def _revision(sync_conn: Any) -> str | None:
    """The schema's revision, from the version table ``migrations/env.py`` names."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        sync_conn, opts={"version_table": "tocsin_alembic_version"})
    revision: str | None = context.get_current_revision()
    return revision
