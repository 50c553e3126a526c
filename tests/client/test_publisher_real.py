"""Publishers against a real server: every route, and a publish whose reply was lost is
retried without a duplicate."""

from __future__ import annotations

import pytest

from tests.client.proxy import DroppingProxy
from tests.support.server import ServerProcess
from tocsin.client import AsyncPublisher, Publisher, TocsinAPIError


def inbox(server: ServerProcess, user: str) -> list[dict[str, object]]:
    with server.subscriber(user) as c:
        items: list[dict[str, object]] = c.get("/api/notifications").json()["items"]
    return items


def test_a_publish_whose_reply_is_lost_is_stored_once(server: ServerProcess,
                                                      uid: str) -> None:
    with DroppingProxy(server.port, drop=1) as proxy, \
            Publisher(proxy.url, server.api_key, backoff=0.05) as pub:
        ids = pub.publish([uid], "Deploy finished", data={"v": 1})
        assert proxy.dropped == 1 and proxy.connections == 2  # sent twice
    items = inbox(server, uid)
    assert len(items) == 1 and items[0]["id"] == ids.ids[uid]


def test_without_the_retry_the_lost_reply_would_have_been_a_duplicate(
        server: ServerProcess, uid: str) -> None:
    # The control: two sends with fresh keys (what a naive retry does) store two.
    with DroppingProxy(server.port, drop=1) as proxy, \
            Publisher(proxy.url, server.api_key, retries=0) as pub:
        with pytest.raises(Exception):  # noqa: B017 - the lost reply
            pub.publish([uid], "Deploy finished")
        pub.publish([uid], "Deploy finished")
    assert len(inbox(server, uid)) == 2


def test_a_topic_event_whose_reply_is_lost_is_not_sent_again(server: ServerProcess,
                                                            uid: str) -> None:
    with DroppingProxy(server.port, drop=1) as proxy, \
            Publisher(proxy.url, server.api_key) as pub:
        with pytest.raises(Exception):  # noqa: B017
            pub.post_event(uid, "Deployed")
        assert proxy.connections == 1
        assert len(pub.topic_events(uid)["items"]) == 1


def test_every_publisher_route(server: ServerProcess, uid: str) -> None:
    with Publisher(server.url, server.api_key) as pub:
        ids = pub.publish([uid, uid + "b"], "T", type="deploy", body="B", priority="urgent",
                          group_key="g", url="https://ci.example/1", actor="ci",
                          source="build", data={"n": 1}, ttl=600)
        assert set(ids.ids) == {uid, uid + "b"}
        first = pub.post_event(f"{uid}:core", "one", actor="ci", data={"k": 1})
        pub.post_event(f"{uid}:core", "two")
        page = pub.topic_events(f"{uid}:core", limit=1)
        assert [e["title"] for e in page["items"]] == ["two"] and page["nextCursor"]
        after = pub.topic_events(f"{uid}:core", since=first["id"])
        assert [e["title"] for e in after["items"]] == ["two"]
        tok = pub.token_info(uid, [f"{uid}:*"], ttl=60)
        assert tok.token.count(".") == 2
        assert isinstance(pub.stats(), dict)
        with pytest.raises(TocsinAPIError) as caught:
            pub.topic_events("bad topic")
        assert caught.value.status == 400 and caught.value.field == "topic"
    item = inbox(server, uid)[0]
    assert (item["type"], item["priority"], item["groupKey"], item["source"]) == (
        "deploy", "urgent", "g", "build")
    with Publisher(server.url, "wrong-key-0123456789") as bad, \
            pytest.raises(TocsinAPIError) as caught:
        bad.stats()
    assert caught.value.status == 401


async def test_async_publisher_against_a_real_server(server: ServerProcess,
                                                     uid: str) -> None:
    with DroppingProxy(server.port, drop=1) as proxy:
        async with AsyncPublisher(proxy.url, server.api_key, backoff=0.05) as pub:
            ids = await pub.publish([uid], "Hi")
            ev = await pub.post_event(uid, "posted")
            assert (await pub.topic_events(uid))["items"][0]["id"] == ev["id"]
            assert (await pub.token(uid)).count(".") == 2
            assert isinstance(await pub.stats(), dict)
    items = inbox(server, uid)
    assert [i["id"] for i in items] == [ids.ids[uid]]
