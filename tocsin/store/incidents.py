"""Escalation on the SQL store: policies, incidents and their timeline (migration
0004), and the acknowledgement, which appends an ``acked`` event to every
recipient's stream in the same transaction that closes the incident (seqs from
``plan.py``, ids with each stream's epoch, like every other event)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
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

from tocsin.events import StreamEvent, user_stream
from tocsin.ids import now_ms
from tocsin.scheduler.base import NewTimer
from tocsin.store.base import Json
from tocsin.store.outbox import Happening
from tocsin.store.plan import dumps
from tocsin.store.tables import events, metadata
from tocsin.store.timers import SqlTimerStore

if TYPE_CHECKING:
    from tocsin.store.db import Database

policies = Table(
    "tocsin_escalation_policies",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("policy", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

incidents = Table(
    "tocsin_incidents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("policy_name", String(100), nullable=False),
    Column("policy", Text, nullable=False),  # the policy as it was when it opened
    Column("note", Text, nullable=False),  # the notification every step sends
    Column("publisher", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # open | acked | exhausted | failed
    Column("created_at", BigInteger, nullable=False),
    Column("next_at", BigInteger),
    Column("next_step", Integer),  # round * 1000 + step of the step begun last
    Column("acked_by", String(200)),
    Column("acked_at", BigInteger),
    Column("error", Text),  # why a step could never run (state failed; migration 0008)
)

# One row per thing that happened; ``entry`` names it uniquely (e.g.
# ``notified:0:1:alice``) so a step run twice records it once.
timeline = Table(
    "tocsin_incident_timeline",
    metadata,
    Column("incident_id", String(32), primary_key=True),
    Column("entry", String(300), primary_key=True),
    # notified | waitSkipped | acked | exhausted | failed (skipped: before 0008)
    Column("kind", String(16), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("round", Integer, nullable=False),
    Column("step", Integer, nullable=False),
    Column("user_id", String(200)),
    Column("notification_id", String(32)),
    Column("active", Boolean),
)
Index("tocsin_incident_timeline_note", timeline.c.notification_id)

TIMER_KIND = "escalation"
_I, _L, _P = incidents.c, timeline.c, policies.c


@dataclass(slots=True)
class Incident:
    id: str
    policy_name: str
    policy: Json
    note: Json
    publisher: str
    state: str
    created_at: int
    next_at: int | None
    next_step: int | None
    acked_by: str | None
    acked_at: int | None
    error: str | None = None


@dataclass(slots=True)
class Entry:
    kind: str
    at: int
    round: int
    step: int
    user: str | None = None
    notification_id: str | None = None
    active: bool | None = None

    def key(self) -> str:
        if self.kind in ("acked", "exhausted", "failed"):
            return self.kind
        return f"{self.kind}:{self.round}:{self.step}:{self.user or ''}"


def _incident(r: Any) -> Incident:
    return Incident(r.id, r.policy_name, orjson.loads(r.policy), orjson.loads(r.note),
                    r.publisher, r.state, r.created_at, r.next_at, r.next_step, r.acked_by,
                    r.acked_at, r.error)


class SqlIncidentStore:
    def __init__(self, db: Database, timers: SqlTimerStore) -> None:
        self.db = db
        self.timers = timers

    # -- policies ------------------------------------------------------------------
    async def put_policy(self, name: str, policy: Json, now: int) -> bool:
        """Create or replace; ``True`` if it was new."""
        async with self.db.write() as conn:
            gone = (await conn.execute(delete(policies).where(_P.name == name)
                                       .returning(_P.name))).first()
            await conn.execute(policies.insert().values(name=name, policy=dumps(policy),
                                                        updated_at=now))
        return gone is None

    async def get_policy(self, name: str) -> Json | None:
        async with self.db.read() as conn:
            raw = (await conn.execute(select(_P.policy).where(_P.name == name))).scalar()
        return None if raw is None else dict(orjson.loads(raw))

    async def delete_policy(self, name: str) -> bool:
        async with self.db.write() as conn:
            return (await conn.execute(delete(policies).where(_P.name == name)
                                       .returning(_P.name))).first() is not None

    # -- incidents -----------------------------------------------------------------
    async def open_incident(self, inc: Incident, first: NewTimer, owner: str,
                            lease_until: int) -> None:
        """The incident and the timer of its first step, in one transaction; the timer
        is leased to ``owner`` (the opener runs the step itself, see
        ``Escalation.open``)."""
        async with self.db.write() as conn:
            await conn.execute(incidents.insert().values(
                id=inc.id, policy_name=inc.policy_name, policy=dumps(inc.policy),
                note=dumps(inc.note), publisher=inc.publisher, state=inc.state,
                created_at=inc.created_at, next_at=first.due_at, next_step=0))
            await self.timers.insert(conn, [first], inc.created_at, owner, lease_until)

    async def get(self, id: str) -> Incident | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(incidents).where(_I.id == id))).first()
        return None if row is None else _incident(row)

    async def begin_step(self, id: str, position: int, next_at: int | None
                         ) -> tuple[Incident, int | None] | None:
        """Mark step ``position`` begun, planning the next for ``next_at``; if it was
        begun already (a retry), the plan made then wins. ``None`` unless open."""
        async with self.db.write() as conn:
            row = (await conn.execute(select(incidents).where(_I.id == id)
                                      .with_for_update())).first()
            if row is None or row.state != "open":
                return None
            inc = _incident(row)
            if inc.next_step != position + 1:
                await conn.execute(update(incidents).where(_I.id == id)
                                   .values(next_step=position + 1, next_at=next_at))
                return inc, next_at
            return inc, inc.next_at

    async def record(self, id: str, entries: list[Entry], state: str | None = None,
                     error: str | None = None, also: Sequence[Happening] = ()) -> None:
        """Append ``entries``; with ``state``, end the incident so (if still open),
        keeping ``error`` (why it failed). ``also``: what it means for the outbox, in
        the same transaction, and only if this is news: with ``state``, if this ended
        the incident; without, if an entry was new (a step run again after a crash
        records nothing new, so its events are not written twice; their ``key`` covers
        a race between two runs)."""
        async with self.db.write() as conn:
            ended = await self._record(conn, id, entries) > 0
            if state is not None:
                ended = bool((await conn.execute(
                    update(incidents).where(_I.id == id, _I.state == "open")
                    .values(state=state, next_at=None, error=error))).rowcount)
            if also and ended:
                await self.db.happened(conn, also)

    async def _record(self, conn: Any, id: str, entries: list[Entry]) -> int:
        """Insert ``entries`` (one already there is kept); how many were new."""
        new = 0
        for e in entries:
            new += (await conn.execute(self.db.insert(timeline).values(
                incident_id=id, entry=e.key(), kind=e.kind, at=e.at, round=e.round,
                step=e.step, user_id=e.user, notification_id=e.notification_id,
                active=e.active).on_conflict_do_nothing())).rowcount
        return new

    async def timeline(self, id: str) -> list[Entry]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(timeline).where(_L.incident_id == id)
                                       .order_by(_L.at, _L.round, _L.step, _L.entry))).all()
        out = [Entry(r.kind, r.at, r.round, r.step, r.user_id, r.notification_id, r.active)
               for r in rows]
        # an ack or the end comes after what was sent at the same instant
        out.sort(key=lambda e: (e.at, e.kind in ("acked", "exhausted", "failed")))
        return out

    async def incident_of(self, user: str, notification_id: str) -> str | None:
        async with self.db.read() as conn:
            return (await conn.execute(
                select(_L.incident_id).where(_L.notification_id == notification_id,
                                             _L.user_id == user).limit(1))).scalar()

    async def ack(self, id: str, by: str, at: int, also: Sequence[Happening] = ()
                  ) -> tuple[Incident, list[StreamEvent]]:
        """Close the incident as acknowledged by ``by`` (the first ack wins; later ones
        change nothing and emit nothing), cancel its timers and put an ``acked`` event
        ``{id, ids, incident, by, at}`` in each recipient's stream, in one transaction
        (with ``also``, the outbox's ``notification.acked``)."""
        out: list[StreamEvent] = []
        async with self.db.write() as conn:
            done = (await conn.execute(
                update(incidents).where(_I.id == id, _I.acked_at.is_(None))
                .values(state="acked", acked_by=by, acked_at=at, next_at=None)
                .returning(_I.id))).first()
            if done is not None:
                await self.timers.cancel_in(conn, TIMER_KIND, id)
                await self._record(conn, id, [Entry("acked", at, -1, -1, by)])
                await self.db.happened(conn, also)
                sent: dict[str, list[str]] = {}
                for user, nid in (await conn.execute(
                        select(_L.user_id, _L.notification_id)
                        .where(_L.incident_id == id, _L.kind == "notified")
                        .order_by(_L.at, _L.round, _L.step))).all():
                    sent.setdefault(user, []).append(nid)
                alloc = await self.db.allocate(
                    conn, {user_stream(u): 1 for u in sent})
                rows: list[Json] = []
                for user, ids in sent.items():
                    stream = user_stream(user)
                    a = alloc[stream]
                    text = dumps({"id": ids[-1], "ids": ids, "incident": id, "by": by,
                                  "at": at})
                    rows.append({"stream": stream, "seq": a.first, "name": "acked",
                                 "data": text, "created_at": now_ms()})
                    out.append(StreamEvent(stream, a.first, "acked", text, a.epoch))
                if rows:
                    await conn.execute(events.insert(), rows)
            row = (await conn.execute(select(incidents).where(_I.id == id))).first()
        assert row is not None
        return _incident(row), out
