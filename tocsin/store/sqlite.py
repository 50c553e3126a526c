"""SQLite (aiosqlite): the embedded default. WAL mode; one writer at a time.

Writers are serialised by an asyncio lock rather than SQLite's busy-wait, so
concurrent publishes queue fairly instead of spinning. ``?synchronous=normal``
in the URL trades power-loss durability for speed; the default is ``full``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import create_async_engine

from tocsin.store.sql import SqlStore

_SYNC_MODES = {"off", "normal", "full", "extra"}


class SqliteStore(SqlStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._insert = sqlite_insert
        self._lock = asyncio.Lock()
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

    async def _prepare(self) -> None:
        self.engine = create_async_engine(self._engine_url, pool_size=8, max_overflow=8)
        synchronous = self._synchronous

        @event.listens_for(self.engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    def _write_lock(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._lock
