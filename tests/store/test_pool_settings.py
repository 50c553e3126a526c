"""``--db-pool-size`` / ``--db-max-overflow`` size the PostgreSQL pool of each process
(the connection budget in docs/deploy.md): a real PostgreSQL never sees more
connections from one store than their sum, however many queries wait."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from tests.support.services import drop_pg_schema, need_postgres, pg_schema_url
from tocsin.config import Settings
from tocsin.service import Tocsin
from tocsin.store.sql import SqlStore


@pytest.mark.postgres
async def test_a_process_opens_at_most_pool_plus_overflow_connections(uid: str) -> None:
    need_postgres()
    schema = f"pool_{uid}"
    settings = Settings(database_url=pg_schema_url(schema), db_pool_size=2, db_max_overflow=1,
                        api_keys=["k" * 16], jwt_secret="s" * 32)
    store = Tocsin(settings).store  # built as the server builds it
    assert isinstance(store, SqlStore)
    await store.open()
    try:
        peak = 0

        async def hold() -> None:
            nonlocal peak
            async with store.db.read() as conn:
                await conn.execute(select(text("pg_sleep(0.2)")))
                mine = await conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = '' AND query LIKE '%pg_sleep%'"))
                peak = max(peak, int(mine.scalar_one()))

        await asyncio.gather(*(hold() for _ in range(8)))
        assert store.engine.pool.size() == 2  # type: ignore[attr-defined]
        assert 1 <= peak <= 3
    finally:
        await store.close()
        await drop_pg_schema(schema)
