"""Snooze on the SQL store (``docs/grouping.md``): the row's ``snoozed_until`` and a
durable ``snooze`` timer (``tocsin_timers``) set in one transaction with the
``snoozed`` event; the wake, run by the scheduler at ``until``, brings the row back
unread with a new seq and a ``notification`` event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.events import StreamEvent, user_stream
from tocsin.scheduler.base import NewTimer
from tocsin.store.base import Change, Json
from tocsin.store.grouping import SNOOZE_TIMER_KIND
from tocsin.store.plan import Allocation, dumps
from tocsin.store.shape import row_json
from tocsin.store.tables import events, notifications
from tocsin.store.timers import SqlTimerStore

if TYPE_CHECKING:
    from tocsin.store.db import Database

_N = notifications.c


class _Nothing(Exception):
    """Rolls the wake's transaction back (its seq is given back)."""


async def snooze(db: Database, user: str, id: str, until: int, now: int) -> Change | None:
    """Hide ``id`` from the user's inbox until ``until``; ``None`` if not the user's."""
    timers = SqlTimerStore(db)

    async def apply(conn: AsyncConnection, _: Allocation, __: int) -> tuple[list[str], Json]:
        got = (await conn.execute(
            update(notifications).where(_N.user_id == user, _N.id == id)
            .values(snoozed_until=until).returning(_N.id))).first()
        if got is None:
            return [], {}
        await timers.cancel_in(conn, SNOOZE_TIMER_KIND, id)  # snoozed again: the new until
        await timers.insert(conn, [NewTimer(f"snooze:{id}:{until}", SNOOZE_TIMER_KIND, id,
                                            until, {"user": user, "until": until})], now)
        return [id], {"ids": [id], "until": until}

    return await db.change_state(user, "snoozed", apply)


async def wake(db: Database, user: str, id: str, until: int, now: int
               ) -> list[StreamEvent]:
    """Bring ``id`` back (unread, a new seq, a ``notification`` event) if it is still
    snoozed until ``until``; otherwise (woken already, dismissed, snoozed again)
    change nothing. Running it twice therefore emits one event."""
    stream = user_stream(user)
    try:
        async with db.write() as conn:
            a = (await db.allocate(conn, {stream: 1}))[stream]
            row = (await conn.execute(
                update(notifications)
                .where(_N.user_id == user, _N.id == id, _N.snoozed_until == until)
                .values(snoozed_until=None, read_at=None, seq=a.first)
                .returning(*notifications.c))).first()
            if row is None:
                raise _Nothing
            text = dumps(row_json(row, a.epoch))
            await conn.execute(events.insert().values(
                stream=stream, seq=a.first, name="notification", data=text, created_at=now))
    except _Nothing:
        return []
    return [StreamEvent(stream, a.first, "notification", text, a.epoch)]


async def unsnooze(db: Database, user: str, id: str, now: int) -> list[StreamEvent] | None:
    """Wake ``id`` now (the user's undo): as the timer's wake would, once. ``None`` when
    it is not the user's or not snoozed. Its timer stays and finds nothing to do."""
    from sqlalchemy import select

    async with db.read() as conn:
        until = (await conn.execute(select(_N.snoozed_until).where(
            _N.user_id == user, _N.id == id))).scalar_one_or_none()
    if until is None:
        return None
    return await wake(db, user, id, int(until), now)
