"""The webhook channel's rows (``tables.py``): named targets and users' own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Table, delete, func, select

from tocsin.channels.webhook.tables import targets, user_targets

if TYPE_CHECKING:
    from tocsin.store.db import Database


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    format: str
    secret: str | None


class SqlWebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, name: str) -> Target | None:
        return await self._get(targets, targets.c.name, name)

    async def get_user(self, user: str) -> Target | None:
        return await self._get(user_targets, user_targets.c.user_id, user)

    async def put(self, name: str, target: Target, now: int) -> None:
        await self._put(targets, "name", name, target, now)

    async def count_others(self, name: str) -> int:
        """How many named targets there are besides ``name``."""
        async with self.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(targets).where(
                targets.c.name != name))).scalar_one())

    async def put_user(self, user: str, target: Target, now: int) -> None:
        await self._put(user_targets, "user_id", user, target, now)

    async def delete(self, name: str) -> bool:
        async with self.db.write() as conn:
            return bool((await conn.execute(
                delete(targets).where(targets.c.name == name))).rowcount)

    async def delete_user(self, user: str) -> bool:
        async with self.db.write() as conn:
            return bool((await conn.execute(
                delete(user_targets).where(user_targets.c.user_id == user))).rowcount)

    async def _get(self, table: Table, key: object, value: str) -> Target | None:
        c = table.c
        async with self.db.read() as conn:
            row = (await conn.execute(
                select(c.url, c.format, c.secret).where(key == value))).first()  # type: ignore[arg-type]
        return None if row is None else Target(str(row[0]), str(row[1]), row[2])

    async def _put(self, table: Table, key: str, value: str, target: Target,
                   now: int) -> None:
        stmt = self.db.insert(table).values(
            {key: value, "url": target.url, "format": target.format,
             "secret": target.secret, "updated_at": now})
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c[key]],
            set_={"url": stmt.excluded.url, "format": stmt.excluded.format,
                  "secret": stmt.excluded.secret, "updated_at": stmt.excluded.updated_at})
        async with self.db.write() as conn:
            await conn.execute(stmt)
