"""The one public way into the database: :class:`Database`, shared by ``SqlStore``
and every sub-store (timers, incidents, preferences, snooze, grouping, push, email).

It holds what a statement needs and nothing a feature decides: the engine, the
dialect's ``insert`` (with ``on_conflict_*``), the writer lock, and the few
operations every writer of a stream repeats (seq allocation, the unread count, a
read-state change with its event). Sub-stores receive it when they are built and
never reach into ``SqlStore``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tocsin.errors import StoreUnavailable
from tocsin.events import StreamEvent, user_stream
from tocsin.ids import now_ms
from tocsin.store.base import Change, Json
from tocsin.store.hooks import NO_HOOK, BatchHook, run_many_sql
from tocsin.store.outbox import NO_OUTBOX, Happening, Outbox
from tocsin.store.plan import Allocation, allocated, dumps, upsert_statements
from tocsin.store.tables import events, notifications

# A read-state change, run inside its transaction once the stream's seq is allocated:
# returns the ids it changed (none: nothing to announce) and the event's data (the
# database adds ``unreadCount``).
StateChange = Callable[[AsyncConnection, Allocation, int], Awaitable[tuple[list[str], Json]]]


def is_unavailable(exc: BaseException) -> bool:
    """True if ``exc`` means the database cannot be reached (rather than a bad query)."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(
            exc, OperationalError | InterfaceError
        )
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


class NoChange(Exception):
    """Raise inside :meth:`Database.write` to roll the transaction back (seqs
    allocated in it are given back); ``result`` travels to the caller's handler."""

    def __init__(self, result: Any = None) -> None:
        self.result = result


_OUTBOX_WROTE = "tocsin.outbox_wrote"
"""Marks a write transaction in which :meth:`Database.happened` wrote rows (in the
connection's ``info``, cleared on every checkout of :meth:`Database.write`)."""


class Database:
    """Transactions, inserts and seq allocation on one engine.

    ``insert`` is the dialect's ``insert()`` (SQLite's or PostgreSQL's, both with
    ``on_conflict_do_nothing``/``on_conflict_do_update``); ``write_lock`` serialises
    writers where the database has one writer (SQLite), no lock elsewhere. The
    engine is bound when the store opens (:meth:`bind`): building a store connects
    to nothing.
    """

    def __init__(self, insert: Callable[[Table], Any],
                 write_lock: contextlib.AbstractAsyncContextManager[Any] | None = None,
                 hook: BatchHook = NO_HOOK) -> None:
        self.insert = insert
        self.hook = hook
        """The publish hook the store was built with (``StoreOptions.hook``): every
        write path that publishes or dismisses calls it in its transaction."""
        """The dialect's ``insert(table)``, with ``on_conflict_*`` support."""
        self.outbox: Outbox = NO_OUTBOX
        """Where :meth:`happened` writes what a transaction changed (``store/outbox.py``):
        registered at start by the feature that forwards it (event webhooks)."""
        self._write_lock = write_lock or contextlib.nullcontext()
        self._engine: AsyncEngine | None = None

    def bind(self, engine: AsyncEngine) -> None:
        """Use ``engine`` from now on (the store's open; again after a re-open)."""
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the store is not open")
        return self._engine

    # -- transactions ------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection outside any explicit transaction (each statement its own
        snapshot); an unreachable database raises :class:`StoreUnavailable`."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (DBAPIError, OSError, TimeoutError) as exc:
            if is_unavailable(exc):
                raise StoreUnavailable() from exc
            raise

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction, committed on exit, rolled back on an exception;
        under the writer lock where the dialect has one."""
        try:
            async with self._write_lock, self.engine.begin() as conn:
                conn.info.pop(_OUTBOX_WROTE, None)  # a rolled-back transaction's mark
                yield conn
                wrote = conn.info.pop(_OUTBOX_WROTE, False)
        except (DBAPIError, OSError, TimeoutError) as exc:
            if is_unavailable(exc):
                raise StoreUnavailable() from exc
            raise
        if wrote:  # committed: what the outbox wrote is due now, not at the next poll
            self.outbox.committed()

    # -- what every writer of a stream repeats -------------------------------------------
    async def allocate(self, conn: AsyncConnection, counts: dict[str, int]
                       ) -> dict[str, Allocation]:
        """Reserve ``counts[stream]`` seqs per stream in ``conn``'s transaction: each
        stream's first new seq and epoch. Takes each stream's counter row lock until
        commit (the raw SQLite writer runs the same statements,
        ``sqlite_writer.allocate``)."""
        out: dict[str, Allocation] = {}
        dialect = conn.dialect
        for sql, params in upsert_statements(counts, dialect.name, dialect.paramstyle):
            out.update(allocated((await conn.exec_driver_sql(sql, params)).all(), counts))
        return out

    async def unread(self, conn: AsyncConnection, user: str, now: int) -> int:
        """``user``'s unread count at ``now`` (expired and snoozed rows left out)."""
        n = notifications.c
        q = select(func.count()).where(
            n.user_id == user,
            n.read_at.is_(None),
            (n.expires_at.is_(None)) | (n.expires_at > now),
            n.snoozed_until.is_(None),  # snoozed: out of the inbox until it wakes
        )
        return int((await conn.execute(q)).scalar_one())

    async def happened(self, conn: AsyncConnection, items: Sequence[Happening]) -> None:
        """Write ``items`` to the outbox in ``conn``'s transaction (they commit, or
        roll back, with the change they report); nothing at all for kinds no outbox
        wants."""
        wanted = [h for h in items if self.outbox.wants(h.kind)]
        if wanted:
            await run_many_sql(conn, self.outbox.statements(wanted))
            conn.info[_OUTBOX_WROTE] = True  # :meth:`write` tells the outbox once committed

    async def change_state(self, user: str, name: str, apply: StateChange,
                           observed: str | None = None,
                           also: Sequence[Happening] = ()) -> Change | None:
        """One read-state change and its ``name`` event in the user's stream, in one
        transaction; ``None`` (and the seq given back) if it changed nothing.

        ``observed``: the kind each changed id is, by ``user``, for the outbox
        (``notification.read``, ...); ``also``: more happenings the change itself
        means (an unsubscribe). Both are written in the transaction, and only if it
        changed something."""
        stream = user_stream(user)
        now = now_ms()
        try:
            async with self.write() as conn:
                alloc = (await self.allocate(conn, {stream: 1}))[stream]
                changed, data = await apply(conn, alloc, now)
                if not changed:
                    raise NoChange()  # e.g. lost a race: nothing to announce
                if observed is not None and self.outbox.wants(observed):
                    # checked first: a node nobody subscribed on builds nothing
                    await self.happened(conn, [Happening(observed, user, nid, user)
                                               for nid in changed])
                if also:
                    await self.happened(conn, also)
                count = await self.unread(conn, user, now)
                text = dumps({**data, "unreadCount": count})
                await conn.execute(events.insert().values(
                    stream=stream, seq=alloc.first, name=name, data=text, created_at=now))
        except NoChange:
            return None
        ev = StreamEvent(stream, alloc.first, name, text, alloc.epoch)
        return Change(unread_count=count, ids=changed, events=[ev])
