"""Attention's rows on the SQL store (migration 0005): preferences, publisher
defaults, quiet periods, and the digest event. The per-batch decision that reads
them inside the publish is attention's hook (``tocsin/attention/hook.py``), given
to the store at construction (``StoreOptions.hook``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

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
)
from sqlalchemy.ext.asyncio import AsyncConnection

from tocsin.events import StreamEvent, user_stream
from tocsin.ids import event_id
from tocsin.store.base import Json
from tocsin.store.outbox import Happening
from tocsin.store.plan import Allocation, dumps
from tocsin.store.tables import events, metadata, streams

if TYPE_CHECKING:
    from tocsin.store.db import Database

DEFAULTS_USER = ""
"""The row holding the publisher defaults (no user id is empty)."""
DIGEST_KIND = "digest"
"""Timer ``digest:<user>:<until>`` (payload ``{"until"}``): the end of a quiet period."""

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

    async def put_announced(self, user: str, prefs: Json, announced: Json,
                            also: Sequence[Happening] = ()) -> list[StreamEvent]:
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

        change = await self.db.change_state(user, "preferences", apply, also=also)
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

