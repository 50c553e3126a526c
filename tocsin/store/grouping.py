"""Live grouping and the publisher's update/retract by idempotency key, on the SQL
store (``docs/grouping.md``).

A publish with ``groupKey`` runs in its own transaction (never the group commit):
it allocates one seq per recipient stream first, which takes each stream's counter
row lock until commit, and only then looks up each recipient's open group. Every
writer of a user's stream is serialised on that lock, and the lookup (a new
statement, a new snapshot under READ COMMITTED) sees the previous writer's commit,
so concurrent publishes to one group count exactly, on any number of nodes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import delete, select, update

from tocsin.events import StreamEvent, user_stream
from tocsin.store.base import Json, NewNotification, PublishResult
from tocsin.store.batch import PublishJob
from tocsin.store.plan import chunks, dumps, plan_rows
from tocsin.store.preferences import forget_dismissed, prepare_sql, write_reach_sql
from tocsin.store.shape import group_wire, notification_json, row_json, with_silent
from tocsin.store.tables import TENANT, events, idempotency, notifications

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tocsin.store.db import Database
    from tocsin.store.plan import Allocation

# Distinct actors kept per group (the stored list; clients see the latest
# shape.SHOWN_ACTORS and the count): bounds the row while "and N others" stays exact up
# to this many people.
MAX_ACTORS = 100
SNOOZE_TIMER_KIND = "snooze"
_N, _E = notifications.c, events.c


def merge_actors(old: str | None, actor: str | None) -> list[str]:
    """The group's actors after a publish by ``actor``: latest first, distinct, at most 5."""
    actors: list[str] = orjson.loads(old) if old else []
    if actor is None:
        return actors[:MAX_ACTORS]
    return [actor, *[a for a in actors if a != actor]][:MAX_ACTORS]


async def open_groups(conn: AsyncConnection, users: list[str], key: str, since: int
                      ) -> dict[str, Any]:
    """Each user's open group of ``key`` (unread, not snoozed, newest publish at or
    after ``since``): the newest such row per user."""
    found: dict[str, Any] = {}
    for chunk in chunks(users):
        rows = (await conn.execute(
            select(notifications).where(
                _N.user_id.in_(chunk), _N.group_key == key, _N.read_at.is_(None),
                _N.snoozed_until.is_(None), _N.created_at >= since)
            .order_by(_N.seq))).all()
        found.update({r.user_id: r for r in rows})
    return found


async def insert_grouped(db: Database, conn: AsyncConnection, users: list[str],
                         note: NewNotification, now: int, window_ms: int,
                         always_inbox: bool = False) -> PublishResult:
    """Publish ``note`` (which has a ``group_key``) to ``users`` inside ``conn``'s
    transaction: a recipient with an open group gets it updated in place (same id,
    new seq), the others a new notification with ``group.count`` 1. ``now`` is the
    store's clock (``StoreOptions.clock``: the wall clock but under
    ``--test-clock-file``): the rows' times, the window and attention are judged by it."""
    assert note.group_key is not None
    key = note.group_key
    if note.ttl_ms is not None and note.expires_at is None:
        note = replace(note, expires_at=now + note.ttl_ms)
    # attention (preferences.py): who is skipped or gets it silently, as in _insert_jobs
    job = PublishJob(users, note, always_inbox=always_inbox)
    await prepare_sql(conn, [job], now, now)
    skipped, silent = job.skipped or {}, job.silent or {}
    users = [u for u in users if u not in skipped]
    if not users:
        return PublishResult(ids={}, skipped=skipped or None, silent=None)
    alloc = await db.allocate(conn, {user_stream(u): 1 for u in users})
    groups = await open_groups(conn, users, key, now - window_ms)
    ids: dict[str, str] = {}
    evs: dict[str, StreamEvent] = {}
    event_rows: list[Json] = []

    fresh = [u for u in users if u not in groups]
    if fresh:
        note_rows, new_events, results = plan_rows(
            [PublishJob(fresh, note, silent=silent or None)], alloc, now)
        (res,) = results
        assert isinstance(res, PublishResult)
        ids.update(res.ids)
        actors = [note.actor] if note.actor is not None else []
        group = group_wire(key, 1, actors)
        for row in note_rows:
            row["group_count"], row["group_actors"] = 1, dumps(actors)
        for ev_row, ev in zip(new_events, res.events, strict=True):
            data = orjson.loads(ev_row["data"])
            data["group"] = group
            ev_row["data"] = dumps(data)
            evs[ev.stream] = StreamEvent(ev.stream, ev.seq, ev.name, ev_row["data"], ev.epoch)
        event_rows += new_events
        for rows in chunks(note_rows):
            await conn.execute(notifications.insert(), list(rows))

    data_text = dumps(note.data) if note.data is not None else None
    for u, old in groups.items():
        stream = user_stream(u)
        a = alloc[stream]
        count = int(old.group_count or 1) + 1
        actors = merge_actors(old.group_actors, note.actor)
        await conn.execute(update(notifications).where(_N.id == old.id).values(
            type=note.type, title=note.title, body=note.body, priority=note.priority,
            url=note.url, actor=note.actor, source=note.source, data=data_text,
            created_at=now, expires_at=note.expires_at, seq=a.first, group_count=count,
            group_actors=dumps(actors), silent_reason=silent.get(u)))
        ids[u] = old.id
        text = dumps(with_silent(notification_json(
            old.id, a.first, a.epoch, note, now, None,
            group_wire(key, count, actors)), silent.get(u)))
        event_rows.append({"stream": stream, "seq": a.first, "name": "notification",
                           "data": text, "created_at": now})
        evs[stream] = StreamEvent(stream, a.first, "notification", text, a.epoch)

    for rows in chunks(event_rows):
        await conn.execute(events.insert(), list(rows))
    result = PublishResult(ids={u: ids[u] for u in users},
                           events=[evs[user_stream(u)] for u in users],
                           skipped=skipped or None, silent=silent or None)
    # push/email timers by id: an update in place re-notifies (same tag on devices)
    await write_reach_sql(conn, [job], [result], now)
    return result


# -- publisher update and retract ------------------------------------------------------
def reply_record(result: PublishResult) -> Json:
    """What the idempotency record keeps of a publish: its whole reply (``ids`` and,
    when present, ``skipped``/``silent``), so a repeated publish answers the same."""
    rec: Json = {"ids": result.ids}
    if result.skipped:
        rec["skipped"] = result.skipped
    if result.silent:
        rec["silent"] = result.silent
    return rec


def _record_ids(rec: Json) -> dict[str, str]:
    """The ``ids`` of a record; older records hold only that mapping (recipient ->
    id, a string: never an object, so a record whose ``"ids"`` is an object is new)."""
    ids = rec.get("ids")
    return dict(ids) if isinstance(ids, dict) else dict(rec)


def replayed_result(rec: Json) -> PublishResult:
    return PublishResult(ids=_record_ids(rec), replayed=True,
                         skipped=rec.get("skipped") if isinstance(rec.get("ids"), dict)
                         else None,
                         silent=rec.get("silent") if isinstance(rec.get("ids"), dict)
                         else None)


async def published(db: Database, key: str, since: int) -> dict[str, str] | None:
    """recipient -> notification id of the publish with idempotency ``key`` (claimed
    at or after ``since``, through any API key: they are one publisher), or ``None``."""
    i = idempotency.c
    async with db.read() as conn:
        row = (await conn.execute(select(i.result, i.created_at).where(
            i.publisher == TENANT, i.key == key))).first()
    if row is None or not row.result or row.created_at < since:
        return None
    return _record_ids(orjson.loads(row.result))


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


async def update_copies(db: Database, ids: dict[str, str], changes: Json, now: int
                        ) -> tuple[dict[str, str], list[StreamEvent]]:
    """Apply ``changes`` (column -> value) to every copy in ``ids``; an ``updated``
    event (the notification, same id) in each owner's stream. Copies dismissed
    meanwhile are skipped (one lost to a race gets ``deleted`` instead)."""
    out: list[StreamEvent] = []
    done: dict[str, str] = {}
    async with db.write() as conn:
        ids, alloc = await _present_with_seqs(db, conn, ids)
        if not ids:
            return {}, []
        rows: list[Json] = []
        for u, nid in ids.items():
            stream = user_stream(u)
            a = alloc[stream]
            row = (await conn.execute(
                update(notifications).where(_N.id == nid, _N.user_id == u).values(**changes)
                .returning(*notifications.c))).first()
            if row is not None:
                name, text = "updated", dumps(row_json(row, a.epoch))
                done[u] = nid
            else:
                name = "deleted"
                text = dumps({"ids": [nid], "unreadCount": await db.unread(conn, u, now)})
            rows.append({"stream": stream, "seq": a.first, "name": name, "data": text,
                         "created_at": now})
            out.append(StreamEvent(stream, a.first, name, text, a.epoch))
        for chunk in chunks(rows):
            await conn.execute(events.insert(), list(chunk))
    return done, out


def _tombstone(nid: str) -> str:
    return dumps({"ids": [nid]})


async def retract_copies(db: Database, ids: dict[str, str], now: int
                         ) -> tuple[dict[str, str], list[StreamEvent]]:
    """Delete every copy in ``ids``, turn every earlier ``notification``/``updated``
    event of it into a ``deleted`` tombstone (same seq: replay can never show it
    again), cancel its snooze timer, and append a ``deleted`` event to each stream."""
    from tocsin.store.timers import timers

    out: list[StreamEvent] = []
    async with db.write() as conn:
        ids, alloc = await _present_with_seqs(db, conn, ids)
        if not ids:
            return {}, []
        rows: list[Json] = []
        for u, nid in ids.items():
            stream = user_stream(u)
            a = alloc[stream]
            gone = (await conn.execute(delete(notifications).where(
                _N.id == nid, _N.user_id == u).returning(_N.silent_reason, _N.created_at))).first()
            if gone is not None:  # not in a digest still to come (docs/attention.md)
                await forget_dismissed(conn, u, [(gone[0], int(gone[1]))])
            await conn.execute(
                update(events).where(
                    _E.stream == stream, _E.seq < a.first,
                    _E.name.in_(("notification", "updated")),
                    _E.data.like(f'{{"id":"{nid}"%'))
                .values(name="deleted", data=_tombstone(nid)))
            await conn.execute(delete(timers).where(timers.c.kind == SNOOZE_TIMER_KIND,
                                                    timers.c.key == nid))
            text = dumps({"ids": [nid], "unreadCount": await db.unread(conn, u, now)})
            rows.append({"stream": stream, "seq": a.first, "name": "deleted", "data": text,
                         "created_at": now})
            out.append(StreamEvent(stream, a.first, "deleted", text, a.epoch))
        for chunk in chunks(rows):
            await conn.execute(events.insert(), list(chunk))
    return ids, out


