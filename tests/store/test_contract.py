"""The store contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from tests.support.services import drop_pg_schema, pg_schema_url
from tocsin.errors import TocsinError
from tocsin.ids import Position, now_ms, parse_position
from tocsin.store import (
    Bounds,
    ListQuery,
    NewNotification,
    NewTopicEvent,
    PublishResult,
    Store,
    store_from_url,
)
from tocsin.store.base import PublishItem


def note(title: str = "Hello", **kw: object) -> NewNotification:
    return NewNotification(type=str(kw.pop("type", "comment")), title=title, **kw)  # type: ignore[arg-type]


async def test_publish_stores_one_per_recipient_with_consecutive_seqs(store: Store) -> None:
    r = await store.publish("p", ["alice", "bob", "alice"], note(data={"k": [1, 2]}))
    assert set(r.ids) == {"alice", "bob"}  # duplicates collapse
    assert sorted((e.stream, e.seq) for e in r.events) == [("u:alice", 1), ("u:bob", 1)]
    r2 = await store.publish("p", ["alice"], note("second"))
    assert [(e.stream, e.seq) for e in r2.events] == [("u:alice", 2)]
    page = await store.list_notifications("alice", ListQuery())
    assert [i["title"] for i in page.items] == ["second", "Hello"]
    assert page.items[1]["data"] == {"k": [1, 2]}
    epoch = r2.events[0].epoch
    assert page.last_event_id == f"{epoch}-2" and page.unread_count == 2
    assert (await store.events_after("u:alice", 0, 10))[0].data.count(r.ids["alice"]) == 1


async def test_idempotency_key_returns_the_first_result_and_writes_nothing(store: Store) -> None:
    first = await store.publish("p", ["alice", "bob"], note(data={"a": 1, "b": [2]}), "key-1")
    # The same request (recipients in another order, repeated; data keys reordered).
    again = await store.publish("p", ["bob", "alice", "bob"], note(data={"b": [2], "a": 1}),
                                "key-1")
    assert again.ids == first.ids and again.replayed and again.events == []
    heads = await store.heads(["u:alice", "u:bob"])
    assert {k: h for k, (h, _) in heads.items()} == {"u:alice": 1, "u:bob": 1}
    # Another API key is the same publisher (rotation): the same reply, nothing written
    rotated = await store.publish("other-publisher", ["alice", "bob"],
                                  note(data={"a": 1, "b": [2]}), "key-1")
    assert rotated.ids == first.ids and rotated.replayed and rotated.events == []


@pytest.mark.parametrize(("recipients", "changes"), [
    (["alice", "bob", "mallory"], {}),  # a new recipient would never have been notified
    (["alice"], {}),
    (["alice", "bob"], {"title": "changed"}),
    (["alice", "bob"], {"data": {"a": 2}}),
    (["alice", "bob"], {"priority": "urgent"}),
    (["alice", "bob"], {"ttl_ms": 60_000}),
])
async def test_idempotency_key_with_another_body_is_a_conflict(
    store: Store, recipients: list[str], changes: dict[str, object]
) -> None:
    first = await store.publish("p", ["alice", "bob"], note(data={"a": 1}), "key-2")
    kw: dict[str, object] = {"data": {"a": 1}, **changes}
    with pytest.raises(TocsinError) as err:
        await store.publish("p", recipients, note(str(kw.pop("title", "Hello")), **kw), "key-2")
    assert err.value.code == "conflict" and err.value.status == 409
    assert err.value.field == "idempotencyKey"
    heads = await store.heads(["u:alice", "u:bob", "u:mallory"])
    assert {k: h for k, (h, _) in heads.items() if h} == {"u:alice": 1, "u:bob": 1}
    # The original request still replays.
    again = await store.publish("p", ["alice", "bob"], note(data={"a": 1}), "key-2")
    assert again.ids == first.ids and again.replayed


async def test_idempotency_keys_from_before_the_body_hash_still_replay(store: Store) -> None:
    """Keys claimed before migration 0003 have no hash: they replay as before."""
    first = await store.publish("p", ["alice"], note(), "old-key")
    engine = store.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE tocsin_idempotency SET body_hash = ''"))
    again = await store.publish("p", ["alice"], note("other"), "old-key")
    assert again.ids == first.ids and again.replayed


async def test_concurrent_idempotent_publishes_create_once(store: Store) -> None:
    results = await asyncio.gather(
        *(store.publish("p", ["carol"], note(), "same") for _ in range(6))
    )
    assert len({r.ids["carol"] for r in results}) == 1
    assert sum(len(r.events) for r in results) == 1
    assert (await store.list_notifications("carol", ListQuery())).unread_count == 1


async def test_ten_thousand_recipients_in_one_batch(store: Store) -> None:
    users = [f"user-{i}" for i in range(10_000)]
    r = await store.publish("p", users, note("broadcast"))
    assert len(r.ids) == 10_000 and len(r.events) == 10_000
    heads = await store.heads([f"u:{u}" for u in users])
    assert {h for h, _ in heads.values()} == {1} and len(heads) == 10_000
    assert {e.stream: e.epoch for e in r.events} == {k: ep for k, (_, ep) in heads.items()}


async def test_a_failed_batch_writes_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.publish("p", ["u1"], note("before"))
    ids = itertools.chain(["dup-id", "ok-id", "dup-id"], itertools.repeat("never"))
    monkeypatch.setattr("tocsin.store.plan.new_id", lambda: next(ids))
    with pytest.raises(Exception):  # noqa: B017 - the driver's integrity error
        await store.publish("p", ["u1", "u2", "u3"], note("half"))
    assert list((await store.heads(["u:u1", "u:u2", "u:u3"])).items()) == [
        ("u:u1", (1, (await store.stream_bounds("u:u1")).epoch))
    ]
    assert [i["title"] for i in (await store.list_notifications("u1", ListQuery())).items] == [
        "before"
    ]
    assert await store.events_after("u:u2", 0, 10) == []


async def test_read_unread_and_counts_emit_events(store: Store) -> None:
    r1 = await store.publish("p", ["alice"], note("a"))
    r2 = await store.publish("p", ["alice"], note("b"))
    a, b = r1.ids["alice"], r2.ids["alice"]
    change = await store.set_read("alice", [a], True)
    assert change is not None and change.ids == [a] and change.unread_count == 1
    assert [(e.name, e.seq) for e in change.events] == [("read", 3)]
    same = await store.set_read("alice", [a], True)  # already read: no event
    assert same is not None and same.events == [] and same.unread_count == 1
    back = await store.set_read("alice", [a], False)
    assert back is not None and back.events[0].name == "unread" and back.unread_count == 2
    assert await store.set_read("bob", [a, b], True) is None  # not bob's
    assert await store.unread_count("alice") == 2


async def test_read_all_by_type_and_before(store: Store) -> None:
    r = await store.publish("p", ["alice"], note("x", type="like"))  # seq 1
    await store.publish("p", ["alice"], note("y", type="comment"))  # seq 2
    await store.publish("p", ["alice"], note("z", type="like"))  # seq 3
    epoch = r.events[0].epoch
    c = await store.read_all("alice", "like", Position(epoch, 3))  # likes before seq 3
    assert c.unread_count == 2 and len(c.ids) == 1
    assert c.events[0].name == "read_all" and f'"upTo":"{epoch}-2"' in c.events[0].data
    c = await store.read_all("alice", None, None)
    assert c.unread_count == 0 and len(c.ids) == 2
    none = await store.read_all("alice", None, None)
    assert none.events == [] and none.unread_count == 0
    assert (await store.stream_bounds("u:alice")).head == 5  # no seq spent on "nothing"


async def test_dismiss_and_other_users_ids(store: Store) -> None:
    r = await store.publish("p", ["alice"], note())
    nid = r.ids["alice"]
    assert await store.dismiss("bob", nid) is None
    assert await store.get_notification("bob", nid) is None
    c = await store.dismiss("alice", nid)
    assert c is not None and c.events[0].name == "deleted" and c.unread_count == 0
    assert await store.get_notification("alice", nid) is None
    assert await store.dismiss("alice", nid) is None


async def test_listing_pagination_filters_and_since(store: Store) -> None:
    for i in range(7):
        await store.publish("p", ["alice"], note(
            f"n{i}", type="like" if i % 2 else "comment", priority="high" if i < 3 else "low",
            source="app" if i == 6 else None))
    epoch = (await store.stream_bounds("u:alice")).epoch
    page = await store.list_notifications("alice", ListQuery(limit=3))
    assert [i["title"] for i in page.items] == ["n6", "n5", "n4"]
    assert page.next_cursor == f"{epoch}-5"
    page2 = await store.list_notifications(
        "alice", ListQuery(limit=3, before=parse_position(page.next_cursor)))
    assert [i["title"] for i in page2.items] == ["n3", "n2", "n1"]
    assert page2.next_cursor == f"{epoch}-2"
    page3 = await store.list_notifications("alice", ListQuery(limit=3, before=Position(epoch, 2)))
    assert [i["title"] for i in page3.items] == ["n0"] and page3.next_cursor is None
    likes = await store.list_notifications("alice", ListQuery(type="like"))
    assert [i["title"] for i in likes.items] == ["n5", "n3", "n1"]
    high = await store.list_notifications("alice", ListQuery(priority="high"))
    assert len(high.items) == 3
    src = await store.list_notifications("alice", ListQuery(source="app"))
    assert [i["title"] for i in src.items] == ["n6"]
    since = await store.list_notifications("alice", ListQuery(since=Position(epoch, 4)))
    assert [i["title"] for i in since.items] == ["n4", "n5", "n6"]  # oldest first
    first = page.items[0]
    await store.set_read("alice", [first["id"]], True)
    unread = await store.list_notifications("alice", ListQuery(unread=True))
    assert first["id"] not in [i["id"] for i in unread.items] and len(unread.items) == 6


async def test_expired_notifications_are_hidden(store: Store) -> None:
    await store.publish("p", ["alice"], note("old", expires_at=now_ms() - 1))
    await store.publish("p", ["alice"], note("fresh", expires_at=now_ms() + 60_000))
    page = await store.list_notifications("alice", ListQuery())
    assert [i["title"] for i in page.items] == ["fresh"] and page.unread_count == 1
    assert page.items[0]["expiresAt"] > now_ms()


async def test_topic_events_and_history(store: Store) -> None:
    for i in range(5):
        ev = await store.add_topic_event(
            "team:core", NewTopicEvent(type="comment", title=f"t{i}", actor="bob",
                                       data={"i": i}))
        assert ev.seq == i + 1 and ev.name == "activity"
    ep = ev.epoch
    page = await store.topic_history("team:core", ListQuery(limit=2))
    assert [i["title"] for i in page.items] == ["t4", "t3"] and page.next_cursor == f"{ep}-4"
    assert page.items[0] == {"id": f"{ep}-5", "topic": "team:core", "type": "comment",
                             "title": "t4", "body": "", "actor": "bob", "data": {"i": 4},
                             "timestamp": page.items[0]["timestamp"]}
    since = await store.topic_history("team:core", ListQuery(since=Position(ep, 3)))
    assert [i["id"] for i in since.items] == [f"{ep}-4", f"{ep}-5"]
    assert page.last_event_id == f"{ep}-5"


async def test_replay_bounds_and_heads(store: Store) -> None:
    assert await store.stream_bounds("u:nobody") == Bounds(0, 0, "") == (0, 0, "")
    for _ in range(4):
        r = await store.publish("p", ["alice"], note())
    ep = r.events[0].epoch
    replayed = await store.events_after("u:alice", 1, 2)
    assert [(e.seq, e.epoch, e.id) for e in replayed] == [(2, ep, f"{ep}-2"), (3, ep, f"{ep}-3")]
    assert await store.stream_bounds("u:alice") == (0, 4, ep)
    assert await store.heads(["u:alice", "u:nobody"]) == {"u:alice": (4, ep)}


async def test_prune_moves_the_replay_horizon(store: Store) -> None:
    for _ in range(3):
        await store.publish("p", ["alice"], note())
    await store.add_topic_event("t", NewTopicEvent(type="x", title="y"))
    deleted = await store.prune(now_ms() + 10, 0)  # retention 0: everything is old
    assert deleted == 4
    ep = (await store.stream_bounds("u:alice")).epoch
    assert await store.stream_bounds("u:alice") == (3, 3, ep)
    assert (await store.stream_bounds("t:t"))[:2] == (1, 1)
    # The inbox itself is not the replay log: notifications stay until dismissed or expired.
    assert len((await store.list_notifications("alice", ListQuery())).items) == 3
    await store.publish("p", ["alice"], note())
    assert [e.seq for e in await store.events_after("u:alice", 3, 10)] == [4]


async def test_concurrent_writers_get_gapless_ordered_seqs(store: Store) -> None:
    async def writer(w: int) -> list[int]:
        seqs = []
        for i in range(15):
            if i % 3 == 0:
                ev = await store.add_topic_event("hot", NewTopicEvent(type="w", title=f"{w}"))
                seqs.append(ev.seq)
            r = await store.publish(f"p{w}", ["hot-user", f"other-{w}"], note(f"{w}-{i}"))
            seqs.extend(e.seq for e in r.events if e.stream == "u:hot-user")
        return seqs

    got = await asyncio.gather(*(writer(w) for w in range(8)))
    user_events = await store.events_after("u:hot-user", 0, 1000)
    assert [e.seq for e in user_events] == list(range(1, 8 * 15 + 1))
    topic_events = await store.events_after("t:hot", 0, 1000)
    assert [e.seq for e in topic_events] == list(range(1, 8 * 5 + 1))
    assert sum(len(g) for g in got) == 8 * 15 + 8 * 5


async def test_group_commit_shares_transactions_and_a_bad_publish_fails_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    batcher = store._batcher  # type: ignore[attr-defined]
    sizes: list[int] = []
    run = batcher._run

    async def counting(jobs: list[object]) -> object:
        sizes.append(len(jobs))
        return await run(jobs)

    monkeypatch.setattr(batcher, "_run", counting)
    good = [store.publish("p", ["gc-user", f"gc-{i}"], note(f"g{i}")) for i in range(30)]
    bad = store.publish("p", ["gc-user"], note("bad", data={"not json": {1, 2}}))
    results = await asyncio.gather(*good[:15], bad, *good[15:], return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], TypeError)
    assert max(sizes) > 1  # concurrent publishes were written together
    user_events = await store.events_after("u:gc-user", 0, 100)
    assert [e.seq for e in user_events] == list(range(1, 31))
    titles = {i["title"] for i in (await store.list_notifications(
        "gc-user", ListQuery(limit=100))).items}
    assert titles == {f"g{i}" for i in range(30)}


# -- epochs ----------------------------------------------------------------------------

EPOCH = re.compile(r"[0-9a-f]{8}")


async def test_epoch_is_assigned_on_first_write_and_stable_afterwards(store: Store) -> None:
    assert (await store.stream_bounds("u:alice")).epoch == ""
    r = await store.publish("p", ["alice"], note())
    epoch = r.events[0].epoch
    assert EPOCH.fullmatch(epoch)
    a = r.ids["alice"]
    later = [
        *(await store.publish("p", ["alice", "bob"], note("batch"))).events,  # seq 2
        *(await store.publish("p", ["alice"], note("keyed"), "k")).events,  # seq 3
    ]
    read = await store.set_read("alice", [a], True)  # seq 4
    gone = await store.dismiss("alice", a)  # seq 5
    assert read is not None and gone is not None
    later += [*read.events, *gone.events,
              *(await store.read_all("alice", None, Position(epoch, 4))).events]  # seq 6
    assert [(e.seq, e.epoch) for e in later if e.stream == "u:alice"] == [
        (seq, epoch) for seq in range(2, 7)]
    assert (await store.stream_bounds("u:alice")).epoch == epoch
    assert {e.epoch for e in await store.events_after("u:alice", 0, 100)} == {epoch}
    # Epochs are per stream: many streams do not all share one.
    many = await store.publish("p", [f"m{i}" for i in range(20)], note())
    assert len({e.epoch for e in many.events}) > 1


async def test_every_rendered_id_carries_the_epoch(store: Store) -> None:
    r1 = await store.publish("p", ["alice"], note("a"))
    await store.publish("p", ["alice"], note("b"))
    ep = r1.events[0].epoch
    ev = r1.events[0]
    assert ev.id == f"{ep}-1" and ev.frame.startswith(f"id: {ep}-1\n".encode())
    assert orjson.loads(ev.data)["eventId"] == f"{ep}-1"
    got = await store.get_notification("alice", r1.ids["alice"])
    assert got is not None and got["eventId"] == f"{ep}-1"
    page = await store.list_notifications("alice", ListQuery(limit=1))
    assert page.items[0]["eventId"] == f"{ep}-2"
    assert page.next_cursor == f"{ep}-2" and page.last_event_id == f"{ep}-2"
    c = await store.read_all("alice", None, None)
    assert orjson.loads(c.events[0].data)["upTo"] == f"{ep}-2" and c.events[0].id == f"{ep}-3"
    t = await store.add_topic_event("news", NewTopicEvent(type="x", title="y"))
    assert EPOCH.fullmatch(t.epoch) and orjson.loads(t.data)["id"] == f"{t.epoch}-1" == t.id
    assert (await store.topic_history("news", ListQuery())).last_event_id == t.id
    empty = await store.list_notifications("nobody", ListQuery())
    assert empty.last_event_id == "0" and empty.next_cursor is None


async def test_a_fresh_database_gives_the_same_stream_a_new_epoch(
    store: Store, tmp_path: Path
) -> None:
    first = (await store.publish("p", ["alice"], note())).events[0]
    async with another_database(store, tmp_path) as other:
        again = (await other.publish("p", ["alice"], note())).events[0]
    assert (again.seq, first.seq) == (1, 1) and again.epoch != first.epoch
    # Also behind a running store (its tables emptied): the database makes the epoch.
    engine = store.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        for table in ("tocsin_streams", "tocsin_events", "tocsin_notifications"):
            await conn.execute(text(f"DELETE FROM {table}"))
    replaced = (await store.publish("p", ["alice"], note())).events[0]
    topic = await store.add_topic_event("t", NewTopicEvent(type="x", title="y"))
    assert replaced.seq == 1 and replaced.epoch not in ("", first.epoch)
    assert EPOCH.fullmatch(topic.epoch)


async def test_cursors_from_another_epoch_are_refused(store: Store) -> None:
    for i in range(3):
        r = await store.publish("p", ["alice"], note(f"n{i}"))
    await store.add_topic_event("news", NewTopicEvent(type="x", title="y"))
    ep = r.events[0].epoch
    foreign = Position("0bad0bad" if ep != "0bad0bad" else "1bad1bad", 2)
    cases = [
        ("before", store.list_notifications("alice", ListQuery(before=foreign))),
        ("since", store.list_notifications("alice", ListQuery(since=foreign))),
        ("before", store.topic_history("news", ListQuery(before=foreign))),
        ("since", store.topic_history("news", ListQuery(since=foreign))),
        ("before", store.read_all("alice", None, foreign)),
        ("since", store.list_notifications("nobody", ListQuery(since=foreign))),
        ("since", store.list_notifications("alice", ListQuery(since=Position("", 2)))),
    ]
    for field, call in cases:
        with pytest.raises(TocsinError) as err:
            await call
        assert (err.value.code, err.value.field) == ("bad_cursor", field)
        assert "current history" in err.value.message
    assert await store.stream_bounds("u:alice") == (0, 3, ep)  # the refused read_all spent nothing
    assert await store.unread_count("alice") == 3
    # Seq 0 ("before the first event") fits every epoch.
    start = await store.list_notifications("alice", ListQuery(since=Position("", 0)))
    assert [i["title"] for i in start.items] == ["n0", "n1", "n2"]


async def test_migration_gives_existing_streams_an_epoch_each(
    store: Store, tmp_path: Path
) -> None:
    from tocsin.store.sql import SqlStore

    async with another_database(store, tmp_path, open=False) as old:
        assert isinstance(old, SqlStore)
        await old._prepare()
        await old.migrate("0001")
        async with old.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO tocsin_streams (key, last_seq) VALUES ('u:a', 3), ('u:b', 5)"))
        await old.engine.dispose()
        await old.open()  # migrates to the head, and on SQLite starts the raw writer
        a, b = await old.stream_bounds("u:a"), await old.stream_bounds("u:b")
        assert (a.head, b.head) == (3, 5)
        assert EPOCH.fullmatch(a.epoch) and EPOCH.fullmatch(b.epoch) and a.epoch != b.epoch
        nxt = (await old.publish("p", ["a"], note())).events[0]
        assert (nxt.seq, nxt.epoch) == (4, a.epoch)


async def test_migration_0008_makes_idempotency_records_deployment_wide(
    store: Store, tmp_path: Path
) -> None:
    """Records claimed per API key before 0008 answer a retry under any key; where two
    keys had claimed the same idempotency key, the newest record is kept."""
    from tocsin.ids import now_ms
    from tocsin.store.sql import SqlStore

    async with another_database(store, tmp_path, open=False) as old:
        assert isinstance(old, SqlStore)
        await old._prepare()
        await old.migrate("0007")
        now = now_ms()
        async with old.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO tocsin_idempotency (publisher, key, result, created_at, "
                "body_hash) VALUES ('k1', 'only', :a, :t, ''), ('k1', 'both', :b, :t, ''), "
                "('k2', 'both', :c, :t2, '')"),
                {"a": '{"ids":{"u":"n1"}}', "b": '{"ids":{"u":"n2"}}',
                 "c": '{"ids":{"u":"n3"}}', "t": now - 10, "t2": now - 5})
        await old.engine.dispose()
        await old.open()
        only = await old.publish("k2", ["u"], note(), "only")
        both = await old.publish("k1", ["u"], note(), "both")
        assert (only.ids, only.replayed) == ({"u": "n1"}, True)
        assert (both.ids, both.replayed) == ({"u": "n3"}, True)


@contextlib.asynccontextmanager
async def another_database(
    store: Store, tmp_path: Path, open: bool = True
) -> AsyncIterator[Store]:
    """A second, empty database on ``store``'s backend."""
    schema = None
    if store.url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / ('other-' + uuid.uuid4().hex[:8] + '.db')}"
    else:
        schema = "t_" + uuid.uuid4().hex[:12]
        url = pg_schema_url(schema)
    other = store_from_url(url)
    if open:
        await other.open()
    try:
        yield other
    finally:
        await other.close()
        if schema:
            await drop_pg_schema(schema)


async def test_an_inbox_page_counts_exactly_the_unread_it_lists_while_publishes_race_it(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish committed between the page's items and its unread count (two
    statements) made the count include a notification the items lacked; a client then
    counted it again as it arrived live (seen in CI as a badge of 2 beside one item)."""
    await store.publish("p", ["racy"], note("first"))
    db = store.db  # type: ignore[attr-defined]
    original = type(db).unread
    raced: list[int] = []

    async def publish_then_count(self: object, conn: object, user: str, now: int) -> int:
        if not raced:
            raced.append(1)
            await store.publish("p", ["racy"], note("between the reads"))
        return int(await original(self, conn, user, now))

    monkeypatch.setattr(type(db), "unread", publish_then_count)
    page = await store.list_notifications("racy", ListQuery())
    assert raced
    assert page.unread_count == len(page.items) == 2
    assert [i["title"] for i in page.items] == ["between the reads", "first"]
    assert page.last_event_id is not None and page.last_event_id.endswith("-2")


async def test_one_batch_of_differently_filled_notifications_stores_each_as_given(
        store: Store) -> None:
    # One shared group commit whose rows leave different columns empty (the SQLite
    # writer inserts each pattern of empty columns with its own statement): every row
    # reads back exactly as published, and as its live event said.
    uid = uuid.uuid4().hex[:8]
    fills: list[dict[str, object]] = [
        {}, {"url": "https://example.com/a"}, {"actor": "ann", "source": "ci"},
        {"data": {"n": 1}}, {"url": "https://example.com/b", "data": {"n": 2}},
        {"actor": "bob", "ttl_ms": 60_000, "priority": "high"}, {}, {"source": "s"}]
    items = [PublishItem([f"fill{i}-{uid}"], note(f"n{i}", body=f"b{i}", **fill))
             for i, fill in enumerate(fills)]
    outcomes = await store.publish_many("p", items)
    for i, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
        assert isinstance(outcome, PublishResult), outcome
        user = item.recipients[0]
        (row,) = (await store.list_notifications(user, ListQuery())).items
        (event,) = await store.events_after(f"u:{user}", 0, 10)
        assert orjson.loads(event.data) == row, i
        n = item.note
        assert (row["id"], row["title"], row["body"], row["priority"]) == (
            outcome.ids[user], n.title, n.body, n.priority), i
        for attr, key in (("url", "url"), ("actor", "actor"), ("source", "source"),
                          ("data", "data"), ("group_key", "groupKey")):
            assert row.get(key) == getattr(n, attr), (i, key)
        assert ("expiresAt" in row) == (n.ttl_ms is not None), i
        assert row["read"] is False and row["silent"] is False, i
