"""The email channel's rows (migration 0007, ``tables.py``): users'
addresses (``tocsin_users``) and the digest queue (``tocsin_email_queue``).

The publish hook reads ``tocsin_users`` through ``EmailChannel.reachable_sql``; this
module serves the users route and the email timers' handlers (``service.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, delete, func, or_, select

from tocsin.channels.email.tables import email_queue, users

if TYPE_CHECKING:
    from tocsin.store.db import Database

_U = users.c
_Q = email_queue.c


class SqlEmailStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- addresses ---------------------------------------------------------------------
    async def get_user(self, user: str) -> tuple[bool, str | None]:
        """``(known, email)``: a user is known once ``PUT /api/users/{user}`` stored them
        (a cleared address leaves them known with ``None``)."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(_U.email).where(_U.user_id == user))).first()
        return (False, None) if row is None else (True, row[0])

    async def put_user(self, user: str, email: str | None, now: int) -> None:
        stmt = self.db.insert(users).values(user_id=user, email=email, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_U.user_id],
            set_={"email": stmt.excluded.email, "updated_at": stmt.excluded.updated_at})
        async with self.db.write() as conn:
            await conn.execute(stmt)

    # -- the digest queue ----------------------------------------------------------------
    async def enqueue(self, user: str, nid: str, period_end: int, now: int) -> None:
        """Queue ``nid`` for the digest ending at ``period_end`` (once: a retried timer
        queues it again harmlessly)."""
        stmt = self.db.insert(email_queue).values(
            user_id=user, notification_id=nid, period_end=period_end, queued_at=now
        ).on_conflict_do_nothing()
        async with self.db.write() as conn:
            await conn.execute(stmt)

    async def queued(self, user: str, period_end: int, limit: int
                     ) -> tuple[list[tuple[str, int]], int]:
        """The first ``limit`` notifications queued for ``user``'s digests ending at or
        before ``period_end`` (oldest first: ``(id, queued_at)``), and how many more
        there are (a digest lists what it checked and counts the rest)."""
        cond = and_(_Q.user_id == user, _Q.period_end <= period_end)
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(_Q.notification_id, _Q.queued_at).where(cond)
                .order_by(_Q.queued_at, _Q.notification_id).limit(limit))).all()
            more = 0
            if len(rows) == limit:
                last = (int(rows[-1][1]), str(rows[-1][0]))
                more = int((await conn.execute(
                    select(func.count()).select_from(email_queue).where(
                        cond, _after(last)))).scalar_one())
        return [(str(r[0]), int(r[1])) for r in rows], more

    async def dequeue(self, user: str, period_end: int, ids: list[str],
                      after: tuple[int, str] | None) -> None:
        """Delete ``ids`` from ``user``'s queue and, with ``after`` (the last row a
        digest checked), every row of its period after that one (the ones it counted)."""
        cond: ColumnElement[bool] | None = _Q.notification_id.in_(ids) if ids else None
        if after is not None:
            rest = and_(_Q.period_end <= period_end, _after(after))
            cond = rest if cond is None else or_(cond, rest)
        if cond is None:
            return
        async with self.db.write() as conn:
            await conn.execute(delete(email_queue).where(_Q.user_id == user, cond))


def _after(last: tuple[int, str]) -> ColumnElement[bool]:
    """Rows after ``(queued_at, id)`` in the queue's order."""
    return or_(_Q.queued_at > last[0],
               and_(_Q.queued_at == last[0], _Q.notification_id > last[1]))
