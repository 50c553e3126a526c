"""The scheduler's timers on the SQL store (SQLite and PostgreSQL):
:class:`tocsin.scheduler.TimerStore` over ``tocsin_timers`` (migration 0004).

A claim is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``:
on PostgreSQL concurrent claimers skip each other's locked rows instead of waiting;
on SQLite (which renders no ``FOR UPDATE``) the statement runs under the single
writer, so claims are serialised. Either way a lease is granted to one owner.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)

from tocsin.scheduler.base import NewTimer, Timer
from tocsin.store.plan import dumps
from tocsin.store.tables import metadata

if TYPE_CHECKING:
    from tocsin.store.db import Database

timers = Table(
    "tocsin_timers",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("due_at", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", BigInteger, nullable=False, server_default="0"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
)
Index("tocsin_timers_due", timers.c.due_at)
Index("tocsin_timers_kind_key", timers.c.kind, timers.c.key)

_T = timers.c
_COLS = (_T.id, _T.kind, _T.key, _T.due_at, _T.payload, _T.attempts, _T.lease_owner,
         _T.lease_until)


def _timer(row: Any) -> Timer:
    return Timer(id=row.id, kind=row.kind, key=row.key, due_at=int(row.due_at),
                 payload=orjson.loads(row.payload), attempts=int(row.attempts),
                 owner=row.lease_owner or "", lease_until=int(row.lease_until))


class SqlTimerStore:
    """Implements :class:`tocsin.scheduler.TimerStore` on a :class:`SqlStore`'s engine."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_timers(self, new: list[NewTimer], now: int) -> None:
        if not new:
            return
        async with self.db.write() as conn:
            await self.insert(conn, new, now)

    async def insert(self, conn: Any, new: list[NewTimer], now: int,
                     leased_to: str | None = None, lease_until: int = 0) -> None:
        """Add ``new`` inside the caller's transaction (existing ids are kept);
        ``leased_to``: already claimed by that owner until ``lease_until``, so no poller
        takes them before the caller fires them itself (and one does if it crashes)."""
        for t in new:
            await conn.execute(
                self.db.insert(timers).values(
                    id=t.id, kind=t.kind, key=t.key, payload=dumps(t.payload),
                    due_at=t.due_at, lease_owner=leased_to,
                    lease_until=lease_until if leased_to else 0,
                    attempts=1 if leased_to else 0, created_at=now,
                ).on_conflict_do_nothing()
            )

    async def claim(self, owner: str, now: int, lease_ms: int, limit: int = 50,
                    ids: list[str] | None = None,
                    skip_kinds: Collection[str] = ()) -> list[Timer]:
        due = (select(_T.id).where(_T.due_at <= now, _T.lease_until <= now)
               .order_by(_T.due_at, _T.id).limit(limit).with_for_update(skip_locked=True))
        if ids is not None:
            due = due.where(_T.id.in_(ids))
        if skip_kinds:
            due = due.where(_T.kind.not_in(sorted(skip_kinds)))
        stmt = (update(timers).where(_T.id.in_(due.scalar_subquery()))
                .values(lease_owner=owner, lease_until=now + lease_ms,
                        attempts=_T.attempts + 1)
                .returning(*_COLS))
        async with self.db.write() as conn:
            rows = (await conn.execute(stmt)).all()
        return sorted((_timer(r) for r in rows), key=lambda t: (t.due_at, t.id))

    async def finish(self, timer: Timer, then: list[NewTimer], now: int) -> bool:
        async with self.db.write() as conn:
            gone = (await conn.execute(
                delete(timers).where(_T.id == timer.id, _T.lease_owner == timer.owner,
                                     _T.lease_until == timer.lease_until)
                .returning(_T.id))).first()
            if gone is None:
                return False
            await self.insert(conn, then, now)
        return True

    async def release(self, timer: Timer, due_at: int) -> bool:
        async with self.db.write() as conn:
            res = (await conn.execute(
                update(timers).where(_T.id == timer.id, _T.lease_owner == timer.owner,
                                     _T.lease_until == timer.lease_until)
                .values(lease_owner=None, lease_until=0, due_at=due_at).returning(_T.id)
            )).first()
        return res is not None

    async def cancel(self, kind: str, key: str) -> int:
        async with self.db.write() as conn:
            return await self.cancel_in(conn, kind, key)

    async def cancel_in(self, conn: Any, kind: str, key: str) -> int:
        res = await conn.execute(delete(timers).where(_T.kind == kind, _T.key == key)
                                 .returning(_T.id))
        return len(res.all())

    async def pending(self, kind: str | None = None, key: str | None = None) -> list[Timer]:
        q = select(*_COLS).order_by(_T.due_at, _T.id)
        if kind is not None:
            q = q.where(_T.kind == kind)
        if key is not None:
            q = q.where(_T.key == key)
        async with self.db.read() as conn:
            return [_timer(r) for r in (await conn.execute(q)).all()]
