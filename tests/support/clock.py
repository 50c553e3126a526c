"""The one fake clock, in two forms: the time a ``tocsin serve`` started with
``--test-clock-file`` reads, frozen in a file that the test moves forward (every node
given the same file shares the same time), with a server started on it for one test; and
``ManualClock``, the same idea in process, for code that takes a ``() -> now``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from tests.support.server import ServerProcess, free_port, served, start_server
from tests.support.services import database_url, drop_pg_schema

T0 = 2_000_000_000_000  # ms since the epoch (2033-05-18): far from any real "now"
# Timers polled every 100 ms: a moved clock is acted on at once, not after the default.
FAST = ["--timer-poll", "100ms", "--heartbeat", "1s"]


def ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    """A UTC date and time in ms since the epoch (what the clock file holds)."""
    return int(datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp() * 1000)


class Clock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.set(T0)

    def set(self, ms: int) -> None:
        # Written aside then renamed: a server never reads a half-written number.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(ms))
        tmp.replace(self.path)
        self.now = ms

    def advance(self, seconds: float) -> None:
        self.set(self.now + int(seconds * 1000))

    @property
    def flags(self) -> list[str]:
        """The ``tocsin serve`` arguments that make a server read this clock."""
        return ["--test-clock-file", str(self.path)]


N = TypeVar("N", int, float)


class ManualClock(Generic[N]):
    """A ``() -> now`` that stands still until the test moves it (``now`` in whatever unit
    the code under test counts: ms for the scheduler, seconds for the rate limiter)."""

    def __init__(self, now: N) -> None:
        self.now = now

    def __call__(self) -> N:
        return self.now

    def advance(self, by: N) -> None:
        self.now += by


@contextmanager
def clocked_server(backend: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, Clock]]:
    """A server on a fresh database of ``backend`` reading a fresh clock at ``T0``, with
    fast timers."""
    clock = Clock(tmp_path / "clock")
    with served(backend, tmp_path, extra=[*FAST, *clock.flags]) as srv:
        yield srv, clock


@dataclass
class Clocked:
    """A server on a database of its own reading a :class:`Clock`, for a module of tests
    (a test module derives its ``Env`` from this to add its fakes). ``srv`` may be
    replaced: a test that restarts the server sets it, and the new one is stopped."""

    srv: ServerProcess
    clock: Clock
    db: str
    """The database URL the server uses, to start another on it or read it directly."""
    tmp: Path

    def sql(self, statement: str, params: dict[str, Any]) -> None:
        """Run one SQL statement on the server's database (a state no route makes)."""
        async def run() -> None:
            from sqlalchemy import text

            from tocsin.store import store_from_url
            from tocsin.store.sql import SqlStore

            store = store_from_url(self.db)
            await store.open()
            try:
                assert isinstance(store, SqlStore)
                async with store.db.write() as conn:
                    await conn.execute(text(statement), params)
            finally:
                await store.close()

        asyncio.run(run())


C = TypeVar("C", bound=Clocked)


@contextmanager
def clocked(kind: type[C], backend: str, tmp_path: Path, extra: Sequence[str] = (),
            **fields: Any) -> Iterator[C]:
    """A ``kind`` (with ``fields``) holding a server on a fresh database of ``backend``,
    reading a fresh clock at ``T0`` with fast timers and ``extra`` flags; stopped, and
    its PostgreSQL schema dropped, afterwards."""
    url, schema = database_url(backend, tmp_path)
    clock = Clock(tmp_path / "clock")
    srv = start_server(tmp_path, database=url, port=free_port(),
                       extra=[*FAST, *clock.flags, *extra])
    env = kind(srv=srv, clock=clock, db=url, tmp=tmp_path, **fields)
    try:
        yield env
    finally:
        env.srv.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))
