"""Shared fixtures: stores and servers on every backend, each test isolated."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, served, start_server
from tests.support.services import database_url, drop_pg_schema
from tocsin.store import Store, store_from_url

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url, schema = database_url(request.param, tmp_path)
    s = store_from_url(url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
        if schema:
            await drop_pg_schema(schema)


@pytest.fixture(params=BACKENDS, scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real ``tocsin serve`` process on each backend, shared by a module's tests
    (tests keep apart by using their own user and topic names: see ``uid``)."""
    with served(request.param, tmp_path_factory.mktemp("server")) as srv:
        yield srv


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path, extra=["--heartbeat", "1s"])
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def uid() -> str:
    """A fresh name for users and topics, so tests can share a server."""
    return uuid.uuid4().hex[:10]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps an event loop running in
    the main thread while its browser is open, which async tests cannot share."""
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid.replace("\\", "/"))
