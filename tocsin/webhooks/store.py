"""Event webhooks' rows (``tables.py``) on the kernel's ``Database``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from tocsin.webhooks.tables import failures, subscriptions

if TYPE_CHECKING:
    from tocsin.store.db import Database

_S = subscriptions.c
_F = failures.c
KEEP_FAILURES = 100
"""Failed deliveries kept per subscription (the newest)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    name: str
    url: str
    events: tuple[str, ...]
    secret: str
    paused: bool
    failures: int
    last_error: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Failure:
    event_id: str
    type: str
    at: int
    attempts: int
    reason: str


def _subscription(row: object) -> Subscription:
    r = row._mapping  # type: ignore[attr-defined]
    return Subscription(str(r["name"]), str(r["url"]), tuple(json.loads(r["events"])),
                        str(r["secret"]), bool(r["paused"]), int(r["failures"]),
                        r["last_error"], int(r["created_at"]), int(r["updated_at"]))


class SqlEventWebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, name: str) -> Subscription | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(subscriptions).where(_S.name == name))).first()
        return None if row is None else _subscription(row)

    async def all(self) -> list[Subscription]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(subscriptions).order_by(_S.name))).all()
        return [_subscription(r) for r in rows]

    async def count(self) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(
                select(func.count()).select_from(subscriptions))).scalar_one())

    async def put(self, name: str, url: str, events: list[str], secret: str,
                  now: int) -> bool:
        """Create or replace ``name`` (resumed: not paused, no failures counted);
        ``True`` if it is new."""
        values = {"url": url, "events": json.dumps(events), "secret": secret,
                  "paused": False, "failures": 0, "last_error": None, "updated_at": now}
        async with self.db.write() as conn:
            done = await conn.execute(update(subscriptions).where(_S.name == name)
                                      .values(**values))
            if done.rowcount:
                return False
            await conn.execute(self.db.insert(subscriptions).values(
                name=name, created_at=now, **values).on_conflict_do_nothing())
        return True

    async def delete(self, name: str) -> bool:
        async with self.db.write() as conn:
            done = await conn.execute(delete(subscriptions).where(_S.name == name))
            await conn.execute(delete(failures).where(_F.name == name))
        return bool(done.rowcount)

    async def succeeded(self, name: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(subscriptions)
                               .where(_S.name == name, _S.failures != 0)
                               .values(failures=0))

    async def attempt_failed(self, name: str, reason: str, pause_after: int) -> bool:
        """Count one failed attempt; pause the subscription at ``pause_after`` in a row.
        ``True`` if this attempt paused it."""
        async with self.db.write() as conn:
            row = (await conn.execute(
                update(subscriptions).where(_S.name == name)
                .values(failures=_S.failures + 1, last_error=reason[:1000])
                .returning(_S.failures, _S.paused))).first()
            if row is None or row[1] or int(row[0]) < pause_after:
                return False
            await conn.execute(update(subscriptions).where(_S.name == name)
                               .values(paused=True))
        return True

    async def record_failure(self, id: str, name: str, failure: Failure) -> None:
        """Keep a delivery given up (the newest :data:`KEEP_FAILURES` per subscription)."""
        async with self.db.write() as conn:
            await conn.execute(self.db.insert(failures).values(
                id=id, name=name, event_id=failure.event_id, type=failure.type,
                at=failure.at, attempts=failure.attempts, reason=failure.reason[:1000],
            ).on_conflict_do_nothing())
            newest = (select(_F.id).where(_F.name == name).order_by(_F.at.desc(), _F.id.desc())
                      .limit(KEEP_FAILURES))
            await conn.execute(delete(failures).where(_F.name == name, _F.id.not_in(newest)))

    async def failures(self, name: str, limit: int) -> list[Failure]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(_F.event_id, _F.type, _F.at, _F.attempts, _F.reason)
                .where(_F.name == name).order_by(_F.at.desc(), _F.id.desc())
                .limit(limit))).all()
        return [Failure(str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in rows]
