"""Statements riding along with the group commit (``tocsin/store/riders.py``), on a
real store of each backend: the trail's first writes are written by the next publish's
transaction, the first of them wins, and they are pruned by the notification's age."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.services import database_url, drop_pg_schema
from tocsin.ids import new_id, now_ms
from tocsin.store import StoreOptions, store_from_url
from tocsin.store.base import NewNotification
from tocsin.store.hooks import NO_HOOK
from tocsin.store.riders import RidingHook
from tocsin.store.sql import SqlStore
from tocsin.store.trail import WRITE_INSERT, prune, writes_of


@pytest.fixture(params=["sqlite", "postgres"])
async def ridden(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> AsyncIterator[tuple[SqlStore, RidingHook]]:
    url, schema = database_url(request.param, tmp_path)
    hook = RidingHook(NO_HOOK)
    store = store_from_url(url, StoreOptions(hook=hook))
    assert isinstance(store, SqlStore)
    await store.open()
    try:
        yield store, hook
    finally:
        await store.close()
        if schema:
            await drop_pg_schema(schema)


async def test_a_rider_is_written_by_the_next_publish_and_the_first_write_wins(
        ridden: tuple[SqlStore, RidingHook]) -> None:
    store, hook = ridden
    nid, other = new_id(), new_id()
    hook.ride((WRITE_INSERT, [(nid, 1000, "sse", 0)]))
    assert await writes_of(store.db, [nid]) == {}  # nothing commits: it waits
    assert hook.waiting == 1 and hook.taken == 0
    await store.publish("p", ["alice"], NewNotification("t", "one"))
    assert hook.waiting == 0 and hook.taken == 1
    assert await writes_of(store.db, [nid]) == {nid: (1000, "sse", False)}
    # a later write of the same copy (another tab, a catch-up, another node) and a new one
    hook.ride((WRITE_INSERT, [(nid, 2000, "ws", 1), (other, 2000, "ws", 1)]))
    await store.publish("p", ["bob", "carol"], NewNotification("t", "two"))
    assert await writes_of(store.db, [nid, other]) == {
        nid: (1000, "sse", False), other: (2000, "ws", True)}
    # one rider per transaction: two queued, two publishes (each its own transaction)
    a, b = new_id(), new_id()
    hook.ride((WRITE_INSERT, [(a, 3000, "poll", 0)]))
    hook.ride((WRITE_INSERT, [(b, 3000, "poll", 0)]))
    await store.publish("p", ["dave"], NewNotification("t", "three"))
    assert hook.waiting == 1
    assert set(await writes_of(store.db, [a, b])) == {a}
    assert hook.take_all() == [(WRITE_INSERT, [(b, 3000, "poll", 0)])] and not hook.waiting


async def test_first_writes_are_pruned_by_the_notification_age(
        ridden: tuple[SqlStore, RidingHook]) -> None:
    store, hook = ridden
    now = now_ms()
    old = f"{now - 60_000:012x}" + "0" * 16  # an id created a minute ago
    young = new_id()
    hook.ride((WRITE_INSERT, [(old, now, "sse", 0), (young, now, "sse", 0)]))
    await store.publish("p", ["alice"], NewNotification("t", "one"))
    assert await prune(store.db, now - 30_000) == 1
    assert set(await writes_of(store.db, [old, young])) == {young}
