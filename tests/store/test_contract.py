"""The store contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tocsin.ids import now_ms
from tocsin.store import ListQuery, NewNotification, NewTopicEvent, Store


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
    assert page.last_event_id == "2" and page.unread_count == 2
    assert (await store.events_after("u:alice", 0, 10))[0].data.count(r.ids["alice"]) == 1


async def test_idempotency_key_returns_the_first_result_and_writes_nothing(store: Store) -> None:
    first = await store.publish("p", ["alice", "bob"], note(), "key-1")
    again = await store.publish("p", ["alice", "bob"], note("changed"), "key-1")
    assert again.ids == first.ids and again.replayed and again.events == []
    assert await store.heads(["u:alice", "u:bob"]) == {"u:alice": 1, "u:bob": 1}
    other = await store.publish("other-publisher", ["alice"], note(), "key-1")
    assert other.ids["alice"] != first.ids["alice"]


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
    assert set(heads.values()) == {1} and len(heads) == 10_000


async def test_a_failed_batch_writes_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.publish("p", ["u1"], note("before"))
    ids = itertools.chain(["dup-id", "ok-id", "dup-id"], itertools.repeat("never"))
    monkeypatch.setattr("tocsin.store.sql.new_id", lambda: next(ids))
    with pytest.raises(Exception):  # noqa: B017 - the driver's integrity error
        await store.publish("p", ["u1", "u2", "u3"], note("half"))
    assert await store.heads(["u:u1", "u:u2", "u:u3"]) == {"u:u1": 1}
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
    await store.publish("p", ["alice"], note("x", type="like"))  # seq 1
    await store.publish("p", ["alice"], note("y", type="comment"))  # seq 2
    await store.publish("p", ["alice"], note("z", type="like"))  # seq 3
    c = await store.read_all("alice", "like", 3)  # likes before seq 3
    assert c.unread_count == 2 and len(c.ids) == 1
    assert c.events[0].name == "read_all" and '"upTo":"2"' in c.events[0].data
    c = await store.read_all("alice", None, None)
    assert c.unread_count == 0 and len(c.ids) == 2
    none = await store.read_all("alice", None, None)
    assert none.events == [] and none.unread_count == 0
    assert (await store.stream_bounds("u:alice"))[1] == 5  # no seq spent on "nothing"


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
    page = await store.list_notifications("alice", ListQuery(limit=3))
    assert [i["title"] for i in page.items] == ["n6", "n5", "n4"] and page.next_cursor == "5"
    page2 = await store.list_notifications("alice", ListQuery(limit=3, before=5))
    assert [i["title"] for i in page2.items] == ["n3", "n2", "n1"]
    page3 = await store.list_notifications("alice", ListQuery(limit=3, before=2))
    assert [i["title"] for i in page3.items] == ["n0"] and page3.next_cursor is None
    likes = await store.list_notifications("alice", ListQuery(type="like"))
    assert [i["title"] for i in likes.items] == ["n5", "n3", "n1"]
    high = await store.list_notifications("alice", ListQuery(priority="high"))
    assert len(high.items) == 3
    src = await store.list_notifications("alice", ListQuery(source="app"))
    assert [i["title"] for i in src.items] == ["n6"]
    since = await store.list_notifications("alice", ListQuery(since=4))
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
    page = await store.topic_history("team:core", ListQuery(limit=2))
    assert [i["title"] for i in page.items] == ["t4", "t3"] and page.next_cursor == "4"
    assert page.items[0] == {"id": "5", "topic": "team:core", "type": "comment",
                             "title": "t4", "body": "", "actor": "bob", "data": {"i": 4},
                             "timestamp": page.items[0]["timestamp"]}
    since = await store.topic_history("team:core", ListQuery(since=3))
    assert [i["id"] for i in since.items] == ["4", "5"]
    assert page.last_event_id == "5"


async def test_replay_bounds_and_heads(store: Store) -> None:
    assert await store.stream_bounds("u:nobody") == (0, 0)
    for _ in range(4):
        await store.publish("p", ["alice"], note())
    assert [e.seq for e in await store.events_after("u:alice", 1, 2)] == [2, 3]
    assert await store.stream_bounds("u:alice") == (0, 4)
    assert await store.heads(["u:alice", "u:nobody"]) == {"u:alice": 4}


async def test_prune_moves_the_replay_horizon(store: Store) -> None:
    for _ in range(3):
        await store.publish("p", ["alice"], note())
    await store.add_topic_event("t", NewTopicEvent(type="x", title="y"))
    deleted = await store.prune(now_ms() + 10, 0)  # retention 0: everything is old
    assert deleted == 4
    assert await store.stream_bounds("u:alice") == (3, 3)
    assert await store.stream_bounds("t:t") == (1, 1)
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
