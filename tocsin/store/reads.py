"""The read side of the SQL store: listings, single notifications, counts, and the
replay log (events, bounds, heads). Nothing here writes.

Ids and cursors are rendered with the stream's epoch, read in the same statement
or connection as the rows they describe; a cursor from another epoch is refused
(``bad_cursor``) before it is used as a seq.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.errors import TocsinError
from tocsin.events import StreamEvent, topic_stream, user_stream
from tocsin.ids import Position, event_id, now_ms
from tocsin.store.base import Bounds, Json, ListQuery, Page
from tocsin.store.db import Database
from tocsin.store.incidents import incidents
from tocsin.store.plan import chunks
from tocsin.store.shape import row_json
from tocsin.store.tables import events, notifications, streams


def check_cursor(cursor: Position, epoch: str, field: str) -> int:
    """The seq of ``cursor`` if it belongs to the stream's current history."""
    if not cursor.fits(epoch):
        raise TocsinError(
            "bad_cursor",
            f"'{field}' is not a cursor of this stream's current history; refetch without it.",
            field,
        )
    return cursor.seq


def _window(seq: Any, query: ListQuery, epoch: str, conds: list[Any]) -> Any:
    """Cursor conditions shared by the listings: ``since`` pages forward (oldest first),
    otherwise newest first, ``before`` an exclusive cursor. Returns the ordering."""
    if query.since is not None:
        conds.append(seq > check_cursor(query.since, epoch, "since"))
        return seq.asc()
    if query.before is not None:
        conds.append(seq < check_cursor(query.before, epoch, "before"))
    return seq.desc()


# Statements every (re)connecting stream runs, built once: constructing a select per
# call made SQLAlchemy regenerate its cache key each time, which was the largest
# cost of a reconnect storm in the profile.
_EVENTS_AFTER = (
    select(events.c.seq, events.c.name, events.c.data, streams.c.epoch)
    .select_from(events.join(streams, streams.c.key == events.c.stream))
    .where(events.c.stream == bindparam("stream"), events.c.seq > bindparam("after"))
    .order_by(events.c.seq)
    .limit(bindparam("limit"))
)
_STREAM_BOUNDS = select(streams.c.pruned_upto, streams.c.last_seq, streams.c.epoch).where(
    streams.c.key == bindparam("key")
)


PAGE_READ_TRIES = 4
"""Reads of an inbox page while publishes to that user keep racing it; the last is
returned as it is (what every read returned before the check)."""


class SqlReads:
    """The queries of :class:`tocsin.store.sql.SqlStore`."""

    db: Database

    async def _bounds(self, conn: AsyncConnection, stream: str) -> Bounds:
        row = (await conn.execute(_STREAM_BOUNDS, {"key": stream})).first()
        if row is None:
            return Bounds(0, 0, "")
        return Bounds(int(row.pruned_upto), int(row.last_seq), row.epoch)

    async def _with_acks(self, conn: AsyncConnection, items: list[Json]) -> list[Json]:
        """Incident notifications with ``acked: {by, at}`` once someone acknowledged
        the incident (docs/escalation.md): a page opened after the ack shows it, with
        no ``acked`` event to replay. One query per page (at most 200 rows)."""
        ids = {i["data"]["incident"] for i in items
               if isinstance(i.get("data"), dict) and isinstance(i["data"].get("incident"), str)}
        if not ids:
            return items
        c = incidents.c
        acked = {r.id: {"by": r.acked_by, "at": r.acked_at} for r in (await conn.execute(
            select(c.id, c.acked_by, c.acked_at).where(c.id.in_(sorted(ids)),
                                                       c.acked_at.is_not(None)))).all()}
        for i in items:
            inc = i["data"].get("incident") if isinstance(i.get("data"), dict) else None
            if inc in acked:
                i["acked"] = acked[inc]
        return items

    async def get_notification(self, user: str, id: str) -> Json | None:
        n = notifications.c
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(notifications).where(n.user_id == user, n.id == id))
            ).first()
            if row is None:
                return None
            epoch = (await self._bounds(conn, user_stream(user))).epoch
            (item,) = await self._with_acks(conn, [row_json(row, epoch)])
        return item

    async def unread_count(self, user: str) -> int:
        async with self.db.read() as conn:
            return await self.db.unread(conn, user, now_ms())

    async def list_notifications(self, user: str, query: ListQuery) -> Page:
        n = notifications.c
        now = now_ms()
        # snoozed rows are out of the inbox until they wake; `snoozed` lists only them
        conds = [n.user_id == user, (n.expires_at.is_(None)) | (n.expires_at > now),
                 n.snoozed_until.is_not(None) if query.snoozed else n.snoozed_until.is_(None)]
        if query.unread:
            conds.append(n.read_at.is_(None))
        if query.type is not None:
            conds.append(n.type == query.type)
        if query.priority is not None:
            conds.append(n.priority == query.priority)
        if query.source is not None:
            conds.append(n.source == query.source)
        stream = user_stream(user)
        async with self.db.read() as conn:
            for _ in range(PAGE_READ_TRIES):
                # Head first: anything committed after it is also in the stream after
                # it, so a client resuming from this id can get duplicates but never a
                # gap.
                _, head, epoch = await self._bounds(conn, stream)
                order = _window(n.seq, query, epoch, conds)
                rows = (
                    await conn.execute(
                        select(notifications).where(and_(*conds)).order_by(order)
                        .limit(query.limit + 1)
                    )
                ).all()
                count = await self.db.unread(conn, user, now)
                # The items and the count are two statements, each its own snapshot
                # (SQLite outside a transaction, PostgreSQL read committed): a publish
                # committed between them gave a count that included a notification
                # the items lacked, and a client applying it live counted it twice.
                # Every change to the inbox moves the stream's head: unchanged, the
                # two reads saw the same inbox.
                if (await self._bounds(conn, stream))[1:] == (head, epoch):
                    break
            page = _page(rows, lambda r: row_json(r, epoch), query, head, epoch, count)
            page.items = await self._with_acks(conn, page.items)
        return page

    async def topic_history(self, topic: str, query: ListQuery) -> Page:
        e = events.c
        stream = topic_stream(topic)
        conds = [e.stream == stream, e.name == "activity"]
        async with self.db.read() as conn:
            _, head, epoch = await self._bounds(conn, stream)
            order = _window(e.seq, query, epoch, conds)
            rows = (
                await conn.execute(
                    select(e.seq, e.data).where(and_(*conds)).order_by(order)
                    .limit(query.limit + 1)
                )
            ).all()
        return _page(rows, lambda r: orjson.loads(r.data), query, head, epoch)

    # -- replay ------------------------------------------------------------------------
    async def events_after(self, stream: str, after: int, limit: int) -> list[StreamEvent]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(_EVENTS_AFTER, {"stream": stream, "after": after,
                                                   "limit": limit})
            ).all()
        return [StreamEvent(stream, r.seq, r.name, r.data, r.epoch) for r in rows]

    async def stream_bounds(self, stream: str) -> Bounds:
        async with self.db.read() as conn:
            return await self._bounds(conn, stream)

    async def heads(self, keys: list[str]) -> dict[str, tuple[int, str]]:
        s = streams.c
        out: dict[str, tuple[int, str]] = {}
        async with self.db.read() as conn:
            for chunk in chunks(keys):
                rows = await conn.execute(
                    select(s.key, s.last_seq, s.epoch).where(s.key.in_(chunk)))
                # by position: a Row's attribute lookup was most of a 10k-stream sweep
                out.update({key: (int(seq), epoch) for key, seq, epoch in rows.tuples()})
        return out


def _page(rows: Sequence[Any], item: Callable[[Any], Json], query: ListQuery, head: int,
          epoch: str, unread_count: int | None = None) -> Page:
    """A listing's page from up to ``query.limit + 1`` rows (one more means "more")."""
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return Page(
        items=[item(r) for r in rows],
        next_cursor=event_id(epoch, rows[-1].seq) if more and rows else None,
        last_event_id=event_id(epoch, head),
        unread_count=unread_count,
    )
