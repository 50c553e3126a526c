"""What happens to a notification after its publish, on the SQL store
(``docs/grouping.md``; the feature: ``tocsin/lifecycle/``).

Snooze: the row's ``snoozed_until`` and a durable ``snooze`` timer (``tocsin_timers``)
set in one transaction with the ``snoozed`` event; the wake, run by the scheduler at
``until``, brings the row back unread with a new seq and a ``notification`` event.

Update and retract by idempotency key: every copy the publish made (found through
its idempotency record, ``idempotency.py``) is changed or deleted, with an event in
each owner's stream."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.events import StreamEvent, user_stream
from tocsin.scheduler.base import NewTimer
from tocsin.store.base import Change, Json
from tocsin.store.hooks import run_sql
from tocsin.store.plan import Allocation, chunks, dumps
from tocsin.store.shape import row_json
from tocsin.store.tables import events, notifications
from tocsin.store.timers import SqlTimerStore, timers

if TYPE_CHECKING:
    from tocsin.store.db import Database

SNOOZE_TIMER_KIND = "snooze"
_N, _E = notifications.c, events.c


class _Nothing(Exception):
    """Rolls the wake's transaction back (its seq is given back)."""


async def snooze(db: Database, user: str, id: str, until: int, now: int) -> Change | None:
    """Hide ``id`` from the user's inbox until ``until``; ``None`` if not the user's."""
    timer_store = SqlTimerStore(db)

    async def apply(conn: AsyncConnection, _: Allocation, __: int) -> tuple[list[str], Json]:
        got = (await conn.execute(
            update(notifications).where(_N.user_id == user, _N.id == id)
            .values(snoozed_until=until).returning(_N.id))).first()
        if got is None:
            return [], {}
        await timer_store.cancel_in(conn, SNOOZE_TIMER_KIND, id)  # snoozed again: the new until
        await timer_store.insert(conn, [NewTimer(f"snooze:{id}:{until}", SNOOZE_TIMER_KIND,
                                                 id, until, {"user": user, "until": until})], now)
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
    async with db.read() as conn:
        until = (await conn.execute(select(_N.snoozed_until).where(
            _N.user_id == user, _N.id == id))).scalar_one_or_none()
    if until is None:
        return None
    return await wake(db, user, id, int(until), now)


async def _present(conn: AsyncConnection, ids: dict[str, str]) -> dict[str, str]:
    """The part of ``ids`` (user -> id) whose rows still exist."""
    have: set[tuple[str, str]] = set()
    for chunk in chunks(list(ids.values())):
        have |= {(r.user_id, r.id) for r in await conn.execute(
            select(_N.user_id, _N.id).where(_N.id.in_(chunk)))}
    return {u: nid for u, nid in ids.items() if (u, nid) in have}


async def _present_with_seqs(db: Database, conn: AsyncConnection, ids: dict[str, str]
                             ) -> tuple[dict[str, str], dict[str, Allocation]]:
    """The copies in ``ids`` still present, and one new seq in each owner's stream
    (none allocated when no copy is left)."""
    ids = await _present(conn, ids)
    if not ids:
        return {}, {}
    return ids, await db.allocate(conn, {user_stream(u): 1 for u in ids})


CopyStep = Callable[[AsyncConnection, str, str, Allocation], Awaitable[tuple[str, str]]]
"""Changes one copy (owner, id) with its owner's new seq; the event to append there
(name, data)."""


async def _each_copy(db: Database, ids: dict[str, str], now: int, step: CopyStep
                     ) -> tuple[dict[str, str], list[StreamEvent]]:
    """In one transaction: ``step`` on every copy in ``ids`` still present, and its
    event appended to the owner's stream. The copies it ran on, and the events."""
    out: list[StreamEvent] = []
    async with db.write() as conn:
        ids, alloc = await _present_with_seqs(db, conn, ids)
        if not ids:
            return {}, []
        rows: list[Json] = []
        for u, nid in ids.items():
            stream = user_stream(u)
            a = alloc[stream]
            name, text = await step(conn, u, nid, a)
            rows.append({"stream": stream, "seq": a.first, "name": name, "data": text,
                         "created_at": now})
            out.append(StreamEvent(stream, a.first, name, text, a.epoch))
        for chunk in chunks(rows):
            await conn.execute(events.insert(), list(chunk))
    return ids, out


async def update_copies(db: Database, ids: dict[str, str], changes: Json, now: int
                        ) -> tuple[dict[str, str], list[StreamEvent]]:
    """Apply ``changes`` (column -> value) to every copy in ``ids``; an ``updated``
    event (the notification, same id) in each owner's stream. Copies dismissed
    meanwhile are skipped (one lost to a race gets ``deleted`` instead)."""
    done: dict[str, str] = {}

    async def update_one(conn: AsyncConnection, u: str, nid: str, a: Allocation
                         ) -> tuple[str, str]:
        row = (await conn.execute(
            update(notifications).where(_N.id == nid, _N.user_id == u).values(**changes)
            .returning(*notifications.c))).first()
        if row is None:
            return "deleted", dumps({"ids": [nid], "unreadCount": await db.unread(conn, u, now)})
        done[u] = nid
        return "updated", dumps(row_json(row, a.epoch))

    _, out = await _each_copy(db, ids, now, update_one)
    return done, out


def _tombstone(nid: str) -> str:
    return dumps({"ids": [nid]})


async def retract_copies(db: Database, ids: dict[str, str], now: int
                         ) -> tuple[dict[str, str], list[StreamEvent]]:
    """Delete every copy in ``ids``, turn every earlier ``notification``/``updated``
    event of it into a ``deleted`` tombstone (same seq: replay can never show it
    again), cancel its snooze timer, and append a ``deleted`` event to each stream."""

    async def retract_one(conn: AsyncConnection, u: str, nid: str, a: Allocation
                          ) -> tuple[str, str]:
        gone = (await conn.execute(delete(notifications).where(
            _N.id == nid, _N.user_id == u).returning(_N.silent_reason, _N.created_at))).first()
        if gone is not None:  # not in a digest still to come (docs/attention.md)
            await run_sql(conn, db.hook.dismissed(u, [(gone[0], int(gone[1]))]))
        await conn.execute(
            update(events).where(
                _E.stream == user_stream(u), _E.seq < a.first,
                _E.name.in_(("notification", "updated")),
                _E.data.like(f'{{"id":"{nid}"%'))
            .values(name="deleted", data=_tombstone(nid)))
        await conn.execute(delete(timers).where(timers.c.kind == SNOOZE_TIMER_KIND,
                                                timers.c.key == nid))
        return "deleted", dumps({"ids": [nid], "unreadCount": await db.unread(conn, u, now)})

    return await _each_copy(db, ids, now, retract_one)
