"""SQLite (aiosqlite): the embedded default. WAL mode; one writer at a time.

Writers are serialised by an asyncio lock rather than SQLite's busy-wait, so
concurrent publishes queue fairly instead of spinning. Group-commit batches run
on a writer thread of their own (``sqlite_writer.py``). ``?synchronous=normal``
in the URL trades power-loss durability for speed; the default is ``full``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import create_async_engine

from tocsin.errors import StoreUnavailable
from tocsin.ids import now_ms
from tocsin.store import sqlite_writer
from tocsin.store.batch import Job, JobResult
from tocsin.store.db import Database
from tocsin.store.options import StoreOptions
from tocsin.store.sql import SqlStore

_SYNC_MODES = {"off", "normal", "full", "extra"}


class SqliteStore(SqlStore):
    def __init__(self, url: str, options: StoreOptions | None = None) -> None:
        # one lock for both writers: SQLAlchemy's transactions and the raw batch writer
        self._lock = asyncio.Lock()
        options = options or StoreOptions()
        super().__init__(url, Database(sqlite_insert, self._lock, options.hook), options)
        # Split by hand: urlsplit would fold "sqlite:////abs" into a netloc.
        base, _, qs = url.partition("?")
        query = dict(parse_qsl(qs))
        self._synchronous = query.pop("synchronous", "full").lower()
        if self._synchronous not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {sorted(_SYNC_MODES)}")
        self._engine_url = base + ("?" + urlencode(query) if query else "")
        path = base.partition(":///")[2]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="tocsin-sqlite-writer")
        self._raw: sqlite3.Connection | None = None

    async def open(self) -> None:
        await super().open()
        if self._path and self._path != ":memory:":
            loop = asyncio.get_running_loop()
            self._raw = await loop.run_in_executor(
                self._writer, sqlite_writer.connect, self._path, self._synchronous)

    async def close(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer, raw.close)
        self._writer.shutdown(wait=False)
        await super().close()

    async def _write_batch(self, jobs: list[Job]) -> list[JobResult]:
        if self._raw is None:
            return await super()._write_batch(jobs)
        loop = asyncio.get_running_loop()
        async with self._lock:
            try:
                return await loop.run_in_executor(
                    self._writer, sqlite_writer.write_batch, self._raw, jobs, now_ms(),
                    self._clock(), self.db.hook)
            except sqlite3.OperationalError as exc:  # locked by another process, disk I/O
                raise StoreUnavailable(f"SQLite: {exc}") from exc

    async def _prepare(self) -> None:
        engine = create_async_engine(self._engine_url, pool_size=8, max_overflow=8)
        self.db.bind(engine)
        synchronous = self._synchronous

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            sqlite_writer.apply_pragmas(cur, synchronous)
            cur.close()
