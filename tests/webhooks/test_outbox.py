"""The outbox on SQLite and PostgreSQL, in process: a read's transaction itself holds
the delivery timers of the subscriptions that want the event (so nothing is left to
run after the commit); a change that rolls back writes none; an unpaused
subscription of another kind, or a paused one, gets none; a kind outside the node's
view writes no statement; a keyed happening written twice is one event."""

from __future__ import annotations

import types
import uuid

import pytest
from sqlalchemy import select

from tocsin.outbound.signing import new_secret
from tocsin.store import Store
from tocsin.store.base import NewNotification
from tocsin.store.outbox import Happening
from tocsin.store.sql import SqlStore
from tocsin.store.timers import SqlTimerStore, timers
from tocsin.webhooks.service import TIMER_KIND, EventWebhooks
from tocsin.webhooks.store import SqlEventWebhookStore


async def outbox_of(store: Store) -> EventWebhooks:
    assert isinstance(store, SqlStore)
    ew = EventWebhooks(types.SimpleNamespace(  # type: ignore[arg-type]
        webhook_allow_private=False, event_webhook_give_up_s=60.0,
        event_webhook_pause_after=3))
    ew._store = SqlEventWebhookStore(store.db)
    subs = ew._store
    await subs.put("reads", "https://example.com/a", ["notification.read"], new_secret(), 0)
    await subs.put("dismissals", "https://example.com/b", ["notification.dismissed"],
                   new_secret(), 0)
    await subs.put("paused", "https://example.com/c", ["notification.read"], new_secret(), 0)
    for _ in range(3):
        await subs.attempt_failed("paused", "HTTP 500", 3)
    await ew._refresh_view()
    store.db.outbox = ew
    return ew


async def deliveries(store: Store) -> list[tuple[str, str, dict[str, object]]]:
    assert isinstance(store, SqlStore)
    return [(t.id, t.key, t.payload) for t in
            await SqlTimerStore(store.db).pending(TIMER_KIND)]


async def test_a_read_commits_with_its_delivery(store: Store) -> None:
    ew = await outbox_of(store)
    assert ew.wants("notification.read") and not ew.wants("notification.unread")
    user = "u" + uuid.uuid4().hex[:8]
    nid = (await store.publish("p", [user], NewNotification(type="t", title="x"))).ids[user]
    change = await store.set_read(user, [nid], True)
    assert change is not None and change.ids == [nid]
    ((id, key, payload),) = await deliveries(store)  # not "paused", not "dismissals"
    event = payload["event"]
    assert isinstance(event, dict)
    assert key == "reads" and id == f"evw:{event['id']}:reads"
    assert event["type"] == "notification.read"
    assert event["data"] == {"id": event["id"], "user": user, "notification": nid,
                             "by": user}
    await store.set_read(user, [nid], True)  # already read: nothing changed, no event
    await store.set_read(user, [nid], False)  # unread: nobody wants it
    assert len(await deliveries(store)) == 1


async def test_a_change_that_rolls_back_writes_no_event(store: Store) -> None:
    await outbox_of(store)
    assert isinstance(store, SqlStore)
    db = store.db
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await db.happened(conn, [Happening("notification.read", "u", "n1", "u")])
            assert (await conn.execute(select(timers.c.id))).all()  # written in it
            raise RuntimeError("the change failed")
    assert await deliveries(store) == []


async def test_the_outbox_hears_of_a_commit_not_of_a_rollback(store: Store) -> None:
    """So its deliveries are sent at once, not at the scheduler's next poll."""
    ew = await outbox_of(store)
    commits: list[None] = []
    ew.committed = lambda: commits.append(None)  # type: ignore[method-assign]
    assert isinstance(store, SqlStore)
    db = store.db
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await db.happened(conn, [Happening("notification.read", "u", "n1", "u")])
            raise RuntimeError("the change failed")
    async with db.write() as conn:  # the same pooled connection: no stale mark
        await db.happened(conn, [Happening("notification.unread", "u", "n1", "u")])
    assert commits == []
    user = "u" + uuid.uuid4().hex[:8]
    nid = (await store.publish("p", [user], NewNotification(type="t", title="x"))).ids[user]
    await store.set_read(user, [nid], True)
    assert commits == [None]


async def test_outside_the_nodes_view_no_statement_is_written(store: Store) -> None:
    ew = await outbox_of(store)
    ew._wanted = frozenset()  # as on a node that knows of no subscription
    user = "u" + uuid.uuid4().hex[:8]
    nid = (await store.publish("p", [user], NewNotification(type="t", title="x"))).ids[user]
    await store.set_read(user, [nid], True)
    assert await deliveries(store) == []
    assert ew.statements([Happening("notification.read")])  # the outbox would write one


async def test_a_keyed_happening_written_twice_is_one_event(store: Store) -> None:
    await outbox_of(store)
    assert isinstance(store, SqlStore)
    db = store.db
    twice = Happening("notification.read", "u", "n1", "system", key="step:1:u")
    for _ in range(2):
        async with db.write() as conn:
            await db.happened(conn, [twice])
    assert len(await deliveries(store)) == 1
