"""Reachability of the real services tests use, and the skip-or-fail rule.

On a developer's machine a test needing PostgreSQL, Redis or Chromium skips with a
reason when that is missing. With ``TOCSIN_REQUIRE_SERVICES=1`` (set by ``.ci/run``)
the same absence fails the test instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CHROMIUM = os.environ.get("TOCSIN_CHROMIUM", "/usr/bin/chromium")
PG_URL = os.environ.get("TOCSIN_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TOCSIN_TEST_REDIS", "redis://127.0.0.1:6379/0")


def required() -> bool:
    return os.environ.get("TOCSIN_REQUIRE_SERVICES", "") in ("1", "true", "yes")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def need(available: bool, what: str) -> None:
    """Skip (or, when services are required, fail) if ``what`` is unavailable."""
    if available:
        return
    if required():
        pytest.fail(f"{what} is required (TOCSIN_REQUIRE_SERVICES=1) but not available")
    pytest.skip(f"{what} is not available on this machine")


def need_postgres() -> None:
    need(port_open(PG_HOST, PG_PORT), f"PostgreSQL on {PG_HOST}:{PG_PORT}")


def need_redis() -> None:
    need(port_open(REDIS_HOST, REDIS_PORT), f"Redis on {REDIS_HOST}:{REDIS_PORT}")


def need_chromium() -> None:
    have = os.path.exists(CHROMIUM) or shutil.which("chromium") is not None
    need(have, f"Chromium at {CHROMIUM}")


def database_url(backend: str, tmp_path: Path) -> tuple[str, str | None]:
    """A fresh database for one test: ``(url, pg schema to drop or None)``."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}", None
    need_postgres()
    schema = "t_" + uuid.uuid4().hex[:12]
    return pg_schema_url(schema), schema


def pg_schema_url(schema: str, base: str = PG_URL) -> str:
    """``base`` with Tocsin's ``?schema=`` option: one test's own PostgreSQL schema."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema={schema}"


async def drop_pg_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
