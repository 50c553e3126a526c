"""Issue 23, item 1: the scheduler starts only after every timer kind has a handler.

Before, ``Escalation.start()`` started the polling loop, then attention, push, email
and grouping registered their kinds; push awaits a database read (its VAPID key) in
between. A timer already due when the server starts (here a snooze that ran out while
every node was down) could be claimed in that window, fail with "no handler for timer
kind" and back off. Now the kernel owns the scheduler and the assembly point
(``Tocsin.start``) calls ``Kernel.start_timers()`` after every feature's start.
Against real ``tocsin serve`` processes, with the fake clock frozen: a timer backed
off past a frozen clock never runs again, so the wake arriving at all shows that the
first claim handled it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select

from tests.support.clock import FAST, Clock
from tests.support.server import ServerProcess, start_server
from tests.support.services import PG_URL, database_url, drop_pg_schema
from tests.support.wait import eventually, wait_until
from tocsin.broker.memory import MemoryBroker
from tocsin.kernel import Kernel
from tocsin.metrics import Metrics
from tocsin.scheduler import NewTimer, Scheduler, Timer
from tocsin.store import Store
from tocsin.store.sql import SqlStore
from tocsin.store.timers import SqlTimerStore, timers
from tocsin.streams.hub import Hub

HOLD_S = 2.0
"""How long push's key read is held: twenty polls of the scheduler (``FAST``: 100 ms)."""


async def test_every_kind_is_registered_before_the_scheduler_starts(store: Store) -> None:
    """The rule, so the race cannot come back: a kind registered after ``start()``, or a
    second ``start()``, is a programming error, raised at once."""
    assert isinstance(store, SqlStore)

    async def handler(t: Timer) -> list[NewTimer]:
        return []

    s = Scheduler(SqlTimerStore(store), lambda: 0, owner="a")
    s.on("early", handler)
    s.start()
    try:
        with pytest.raises(RuntimeError, match="'late' registered after the scheduler"):
            s.on("late", handler)
        with pytest.raises(RuntimeError, match="started once"):
            s.start()
        assert list(s.handlers) == ["early"]
    finally:
        await s.stop()


async def test_the_kernel_claims_nothing_before_start_timers(store: Store) -> None:
    """The kernel owns the node's one scheduler: features register their kinds on
    ``kernel.timers`` before ``start_timers()`` (the assembly point calls it last), so
    a timer already due is left alone until then and handled on its first claim; a
    kind registered after it is refused."""
    assert isinstance(store, SqlStore)
    hub = Hub(store, MemoryBroker(f"memory://{uuid.uuid4().hex}"))
    kernel = Kernel(store, hub, Metrics(hub), lambda: 10_000, timer_poll_s=0.02)
    await SqlTimerStore(store.db).add_timers([NewTimer("due:1", "due", "k", 0, {})], 0)

    async def attempts() -> list[int]:
        async with store.db.read() as conn:
            return [int(a) for (a,) in await conn.execute(
                select(timers.c.attempts).where(timers.c.id == "due:1"))]

    async def finished() -> bool:
        return await attempts() == []

    ran: list[int] = []

    async def handler(t: Timer) -> list[NewTimer]:
        ran.append(t.attempts)
        return []

    await asyncio.sleep(0.2)  # ten polls' worth: nothing polls before start_timers()
    assert await attempts() == [0]
    kernel.timers.on("due", handler)
    kernel.start_timers()
    try:
        await eventually(lambda: ran, what="the due timer to run")
        assert ran == [1]  # its first claim
        await eventually(finished, what="the timer to finish (deleted)")
        with pytest.raises(RuntimeError, match="'late' registered after the scheduler"):
            kernel.timers.on("late", handler)
    finally:
        await kernel.stop()


def inbox_ids(srv: ServerProcess, user: str) -> list[str]:
    with srv.subscriber(user) as sub:
        r = sub.get("/api/notifications")
        assert r.status_code == 200, r.text
        return [str(i["id"]) for i in r.json()["items"]]


def snooze_then_stop(tmp_path: Path, url: str, clock: Clock, user: str) -> str:
    """A notification snoozed for a minute, every node stopped, and the minute gone:
    its timer is due before the next server starts. Its id."""
    srv = start_server(tmp_path, database=url, extra=[*FAST, *clock.flags])
    try:
        with srv.publisher() as pub:
            r = pub.post("/api/notifications", json={
                "recipients": [user], "type": "t", "title": "later"})
            assert r.status_code == 201, r.text
            nid = str(r.json()["ids"][user])
        with srv.subscriber(user) as sub:
            r = sub.post(f"/api/notifications/{nid}/snooze",
                         json={"until": clock.now + 60_000})
            assert r.status_code == 200, r.text
        assert inbox_ids(srv, user) == []
    finally:
        srv.stop()
    clock.advance(61)
    return nid


def woken_on_the_first_claim(srv: ServerProcess, user: str, nid: str) -> None:
    got = wait_until(lambda: inbox_ids(srv, user), within=20,
                     what=lambda: f"the snooze to wake; server log:\n{srv.log()}")
    assert got == [nid]
    log = srv.log()
    assert "no handler" not in log and "failed, retrying" not in log, log


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_snooze_due_before_the_start_wakes_on_the_first_claim(
        backend: str, tmp_path: Path) -> None:
    url, schema = database_url(backend, tmp_path)
    clock, user = Clock(tmp_path / "clock"), "r" + uuid.uuid4().hex[:10]
    try:
        nid = snooze_then_stop(tmp_path, url, clock, user)
        srv = start_server(tmp_path, database=url, extra=[*FAST, *clock.flags])
        try:
            woken_on_the_first_claim(srv, user, nid)
        finally:
            srv.stop()
    finally:
        if schema:
            asyncio.run(drop_pg_schema(schema))


@asynccontextmanager
async def pg(schema: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        yield conn
    finally:
        await conn.close()


async def test_no_timer_is_claimed_while_push_still_reads_its_key(tmp_path: Path) -> None:
    """The window made wide on purpose: another transaction holds ``tocsin_kv`` while
    the server starts, so push's key read waits. Before, the scheduler claimed the due
    snooze meanwhile (``attempts`` 1, "no handler", backed off for good); now nothing is
    claimed until every handler is registered, and the snooze wakes on its first claim."""
    url, schema = database_url("postgres", tmp_path)
    assert schema is not None
    clock, user = Clock(tmp_path / "clock"), "r" + uuid.uuid4().hex[:10]
    try:
        nid = await asyncio.to_thread(snooze_then_stop, tmp_path, url, clock, user)
        async with pg(schema) as holder, pg(schema) as probe:
            tx = holder.transaction()
            await tx.start()
            await holder.execute("LOCK TABLE tocsin_kv IN ACCESS EXCLUSIVE MODE")
            starting = asyncio.create_task(asyncio.to_thread(
                start_server, tmp_path, database=url, extra=[*FAST, *clock.flags]))
            try:
                await eventually(lambda: probe.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted "
                    "AND relation = 'tocsin_kv'::regclass"), within=30,
                    what="push's key read to wait on the held table")
                attempts: list[int] = []
                until = time.monotonic() + HOLD_S
                while time.monotonic() < until and not any(attempts):
                    attempts = [int(a) for a in await probe.fetchval(
                        "SELECT array_agg(attempts) FROM tocsin_timers "
                        "WHERE kind = 'snooze'")]
                    await asyncio.sleep(0.05)
            finally:
                await tx.rollback()
                srv = await starting
        try:
            assert attempts == [0], (f"the snooze timer was claimed ({attempts=}) before "
                                     f"push registered; server log:\n{srv.log()}")
            await asyncio.to_thread(woken_on_the_first_claim, srv, user, nid)
        finally:
            srv.stop()
    finally:
        await drop_pg_schema(schema)
