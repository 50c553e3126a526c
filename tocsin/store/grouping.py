"""Live grouping on the SQL store (``docs/grouping.md``): a publish with ``groupKey``
updates each recipient's open group in place instead of adding a row.

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
from sqlalchemy import select, update

from tocsin.events import StreamEvent, user_stream
from tocsin.store.base import Json, NewNotification, PublishResult
from tocsin.store.batch import PublishJob
from tocsin.store.plan import chunks, dumps, plan_rows
from tocsin.store.preferences import prepare_sql, write_reach_sql
from tocsin.store.shape import group_wire, notification_json, with_silent
from tocsin.store.tables import events, notifications

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tocsin.store.db import Database

# Distinct actors kept per group (the stored list; clients see the latest
# shape.SHOWN_ACTORS and the count): bounds the row while "and N others" stays exact up
# to this many people.
MAX_ACTORS = 100
_N = notifications.c


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
