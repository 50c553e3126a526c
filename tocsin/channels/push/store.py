"""Web Push subscriptions and the key-value rows (the VAPID key pair) on the SQL
store (tables in ``tables.py``, migration 0007).

A device is one subscription: its endpoint is unique. Registering an endpoint again
keeps its id and moves it to whoever registered it last (another user signed in on
that browser), so a device never receives two users' notifications. Each user keeps
at most ``cap`` subscriptions: registering one more removes the oldest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from tocsin.channels.push.tables import kv, push_subscriptions
from tocsin.ids import new_id
from tocsin.store.outbox import Happening

if TYPE_CHECKING:
    from tocsin.store.db import Database

_S = push_subscriptions.c
_K = kv.c


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    user: str
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str | None
    created_at: int
    last_sent_at: int | None


def _sub(row: Any) -> Subscription:
    return Subscription(row.id, row.user_id, row.endpoint, row.p256dh, row.auth,
                        row.user_agent, int(row.created_at),
                        None if row.last_sent_at is None else int(row.last_sent_at))


class SqlPushStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- key-value -------------------------------------------------------------------
    async def kv_get(self, key: str) -> str | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(_K.value).where(_K.key == key))).first()
        return None if row is None else str(row[0])

    async def kv_setdefault(self, key: str, value: str, now: int) -> str:
        """Store ``value`` unless ``key`` has one already; the value kept either way.
        Concurrent callers (nodes starting together) all get the same one."""
        async with self.db.write() as conn:
            await conn.execute(self.db.insert(kv).values(key=key, value=value,
                                                             updated_at=now)
                               .on_conflict_do_nothing(index_elements=[_K.key]))
        got = await self.kv_get(key)
        assert got is not None
        return got

    # -- subscriptions ---------------------------------------------------------------
    async def subscribe(self, user: str, endpoint: str, p256dh: str, auth: str,
                        user_agent: str | None, now: int, cap: int) -> tuple[str, list[str]]:
        """Register (or re-register) a device for ``user``: ``(its id, ids of the
        user's oldest subscriptions removed to stay within cap)``."""
        stmt = self.db.insert(push_subscriptions).values(
            id=new_id(), user_id=user, endpoint=endpoint, p256dh=p256dh, auth=auth,
            user_agent=user_agent, created_at=now, last_sent_at=None)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_S.endpoint],
            set_={"user_id": stmt.excluded.user_id, "p256dh": stmt.excluded.p256dh,
                  "auth": stmt.excluded.auth, "user_agent": stmt.excluded.user_agent,
                  "created_at": stmt.excluded.created_at},
        ).returning(_S.id)
        async with self.db.write() as conn:
            sid = str((await conn.execute(stmt)).scalar_one())
            over = (await conn.execute(
                select(_S.id).where(_S.user_id == user)
                .order_by(_S.created_at.desc(), _S.id.desc()).offset(cap))).scalars().all()
            evicted = [str(i) for i in over if i != sid]
            if evicted:
                await conn.execute(delete(push_subscriptions).where(_S.id.in_(evicted)))
        return sid, evicted

    async def list(self, user: str) -> list[Subscription]:
        """``user``'s subscriptions, newest first."""
        q = (select(push_subscriptions).where(_S.user_id == user)
             .order_by(_S.created_at.desc(), _S.id.desc()))
        async with self.db.read() as conn:
            return [_sub(r) for r in (await conn.execute(q)).all()]

    async def get(self, id: str) -> Subscription | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(push_subscriptions).where(_S.id == id))).first()
        return None if row is None else _sub(row)

    async def delete(self, id: str, user: str | None = None,
                     also: Sequence[Happening] = ()) -> bool:
        """Remove a subscription (only if it is ``user``'s, when given); ``also``:
        what its removal means (``push.gone``), written to the outbox in the same
        transaction if it was there to remove."""
        cond = _S.id == id if user is None else (_S.id == id) & (_S.user_id == user)
        async with self.db.write() as conn:
            gone = (await conn.execute(delete(push_subscriptions).where(cond)
                                       .returning(_S.id))).first()
            if gone is not None and also:
                await self.db.happened(conn, also)
        return gone is not None

    async def sent(self, id: str, now: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(push_subscriptions).where(_S.id == id)
                               .values(last_sent_at=now))
