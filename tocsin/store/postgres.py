"""PostgreSQL (asyncpg). ``?schema=NAME`` in the URL puts Tocsin's tables in their
own schema (created if missing), e.g. one per test or per tenant."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tocsin.store.db import Database
from tocsin.store.options import StoreOptions
from tocsin.store.sql import SqlStore

_SCHEMA = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_MIGRATION_LOCK = 0x70C5_1E  # pg_advisory lock id held while migrating


class PostgresStore(SqlStore):
    batch_inflight = 4  # commits overlap across connections

    def __init__(self, url: str, options: StoreOptions | None = None) -> None:
        options = options or StoreOptions()
        super().__init__(url, Database(pg_insert, hook=options.hook), options)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        self.schema = query.pop("schema", None)
        if self.schema is not None and not _SCHEMA.match(self.schema):
            raise ValueError(f"invalid schema name {self.schema!r}")
        scheme = parts.scheme
        if scheme in ("postgresql", "postgres"):
            scheme = "postgresql+asyncpg"
        self._engine_url = urlunsplit(parts._replace(scheme=scheme, query=urlencode(query)))

    async def _prepare(self) -> None:
        connect_args: dict[str, Any] = {"timeout": 5, "command_timeout": 10}
        if self.schema is not None:
            connect_args["server_settings"] = {"search_path": self.schema}
        engine = create_async_engine(
            self._engine_url, pool_size=self.options.pool_size,
            max_overflow=self.options.max_overflow, pool_timeout=10,
            pool_recycle=1800, connect_args=connect_args,
        )
        self.db.bind(engine)
        if self.schema is not None:
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    async def _lock_migrations(self, conn: AsyncConnection) -> None:
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
