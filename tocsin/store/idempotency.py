"""The publish's idempotency on the SQL store (``tocsin_idempotency``): a publish
with an ``idempotencyKey`` claims the key in its own transaction, and the reply it
made is kept with the key for :data:`IDEMPOTENCY_WINDOW_MS`, so a repeated publish answers the
same (``replayed``) instead of notifying again; the same key with another request is
a conflict. The record also finds the copies a publish made, for the publisher's
update and retract by key (``store/lifecycle.py``)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import select, update

from tocsin.errors import TocsinError
from tocsin.store.base import Json, NewNotification, PublishResult
from tocsin.store.plan import dumps
from tocsin.store.tables import TENANT, idempotency

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from tocsin.store.db import Database

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
"""How long a key and its reply are kept (pruned after)."""


def request_hash(users: list[str], note: NewNotification) -> str:
    """The identity of a publish request, stored with its idempotency key: the set of
    recipients (order and repeats do not matter) and every field of the notification."""
    canonical = {"recipients": sorted(set(users)), **dataclasses.asdict(note)}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def claim(db: Database, conn: AsyncConnection, publisher: str, key: str,
                body_hash: str, now: int) -> Json | None:
    """Claim ``key`` for this transaction, or return the reply record stored under it;
    ``TocsinError("conflict")`` if it was first used with another request body.

    A concurrent transaction with the same key waits on the primary key until the
    first commits, then sees its result.
    """
    i = idempotency.c
    taken = (
        db.insert(idempotency)
        .values(publisher=publisher, key=key, result="", created_at=now,
                body_hash=body_hash)
        .on_conflict_do_nothing()
        .returning(i.key)
    )
    if (await conn.execute(taken)).first() is not None:
        return None
    row = (
        await conn.execute(
            select(i.result, i.created_at, i.body_hash)
            .where(i.publisher == publisher, i.key == key)
        )
    ).first()
    if row is not None and row.result and row.created_at >= now - IDEMPOTENCY_WINDOW_MS:
        if row.body_hash and row.body_hash != body_hash:
            raise TocsinError(
                "conflict", "This idempotencyKey was already used with a different "
                "request (recipients or content); use a new key for a new notification.",
                "idempotencyKey")
        result: Json = orjson.loads(row.result)  # reply_record's
        return result
    # Expired (or left empty by a failed writer): take it over.
    await conn.execute(
        update(idempotency)
        .where(i.publisher == publisher, i.key == key)
        .values(result="", created_at=now, body_hash=body_hash)
    )
    return None


async def keep_reply(conn: AsyncConnection, publisher: str, key: str,
                     result: PublishResult) -> None:
    """Store the reply of the publish that claimed ``key``, in its transaction."""
    i = idempotency.c
    await conn.execute(update(idempotency).where(i.publisher == publisher, i.key == key)
                       .values(result=dumps(reply_record(result))))


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
