from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.broker.redis_server import PrivateRedis, need_redis_server
from tests.support.server import ServerProcess
from tests.support.services import PG_URL, need_postgres, need_redis

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def _drop_schema(schema: str) -> None:
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def pg_url_with(schema: str, base: str = PG_URL) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema={schema}"


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for one test (dropped afterwards)."""
    need_postgres()
    need_redis()
    schema = "cl_" + uuid.uuid4().hex[:12]
    yield schema
    await _drop_schema(schema)


@pytest.fixture
def pg_url(pg_schema: str) -> str:
    return pg_url_with(pg_schema)


@pytest.fixture
def nodes_to_stop() -> Iterator[list[ServerProcess]]:
    """Every node a test starts goes here, so it is stopped even when the test fails."""
    nodes: list[ServerProcess] = []
    yield nodes
    for n in nodes:
        n.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    need_redis_server()
    d = tmp_path / "redis"
    d.mkdir()
    server = PrivateRedis(d).start()
    yield server
    server.stop()
