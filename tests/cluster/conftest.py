from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.broker.redis_server import PrivateRedis, need_redis_server
from tests.support.server import ServerProcess
from tests.support.services import (
    PG_URL,
    drop_pg_schema,
    need_postgres,
    need_redis,
    pg_schema_url,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def pg_url_with(schema: str, base: str = PG_URL) -> str:
    return pg_schema_url(schema, base)


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for one test (dropped afterwards)."""
    need_postgres()
    need_redis()
    schema = "cl_" + uuid.uuid4().hex[:12]
    yield schema
    await drop_pg_schema(schema)


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
