"""The HTTP API against a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from tests.support.ids import seq_of, with_seq
from tests.support.server import ServerProcess


def publish(srv: ServerProcess, **body: object) -> httpx.Response:
    body.setdefault("type", "comment")
    body.setdefault("title", "Hello")
    with srv.publisher() as c:
        return c.post("/api/notifications", json=body)


def test_publish_then_list_newest_first(server: ServerProcess, uid: str) -> None:
    alice = f"alice-{uid}"
    r = publish(server, recipients=[alice, f"bob-{uid}"], title="First", priority="high",
                groupKey="post:1", url="https://example.com/p/1", actor="carol",
                source="blog", data={"postId": 1})
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    assert set(ids) == {alice, f"bob-{uid}"} and all(isinstance(v, str) for v in ids.values())
    publish(server, recipients=[alice], title="Second")
    with server.subscriber(alice) as c:
        page = c.get("/api/notifications").json()
    assert [i["title"] for i in page["items"]] == ["Second", "First"]
    first = page["items"][1]
    assert first == {
        "id": ids[alice], "type": "comment", "title": "First", "body": "", "priority": "high",
        "timestamp": first["timestamp"], "read": False, "groupKey": "post:1",
        "url": "https://example.com/p/1", "actor": "carol", "source": "blog",
        "data": {"postId": 1}, "eventId": first["eventId"],
        # A grouped publish opens a group of one (docs/grouping.md); nothing made it
        # silent (docs/attention.md).
        "group": {"key": "post:1", "count": 1, "actors": ["carol"], "people": 1}, "silent": False,
    }
    assert seq_of(first["eventId"]) == 1
    assert page["items"][0]["priority"] == "medium"  # the default
    assert page["unreadCount"] == 2 and page["nextCursor"] is None
    assert page["lastEventId"] == with_seq(first["eventId"], 2)


def test_idempotency_key_over_http(server: ServerProcess, uid: str) -> None:
    body = {"recipients": [f"u-{uid}"], "idempotencyKey": f"order-{uid}"}
    first = publish(server, **body)
    second = publish(server, **body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    with server.subscriber(f"u-{uid}") as c:
        assert c.get("/api/notifications/unread-count").json() == {"unreadCount": 1}


def test_ten_thousand_recipients(server: ServerProcess, uid: str) -> None:
    users = [f"{uid}-{i}" for i in range(10_000)]
    r = publish(server, recipients=users, title="Maintenance tonight")
    assert r.status_code == 201 and len(r.json()["ids"]) == 10_000
    with server.subscriber(users[-1]) as c:
        assert c.get("/api/notifications").json()["items"][0]["title"] == "Maintenance tonight"


def test_pagination_and_filters(server: ServerProcess, uid: str) -> None:
    u = f"p-{uid}"
    for i in range(5):
        publish(server, recipients=[u], title=f"n{i}", type="like" if i % 2 else "comment",
                priority="urgent" if i == 4 else "low", source="shop" if i == 0 else None)
    with server.subscriber(u) as c:
        p1 = c.get("/api/notifications", params={"limit": 2}).json()
        assert [i["title"] for i in p1["items"]] == ["n4", "n3"]
        p2 = c.get("/api/notifications", params={"limit": 2, "before": p1["nextCursor"]}).json()
        assert [i["title"] for i in p2["items"]] == ["n2", "n1"]
        p3 = c.get("/api/notifications", params={"limit": 2, "before": p2["nextCursor"]}).json()
        assert [i["title"] for i in p3["items"]] == ["n0"] and p3["nextCursor"] is None
        assert len(c.get("/api/notifications", params={"type": "like"}).json()["items"]) == 2
        urgent = c.get("/api/notifications", params={"priority": "urgent"}).json()["items"]
        assert [i["title"] for i in urgent] == ["n4"]
        assert [i["title"] for i in c.get("/api/notifications",
                                          params={"source": "shop"}).json()["items"]] == ["n0"]
        since = c.get("/api/notifications", params={"since": with_seq(p1["nextCursor"], 3)}).json()
        assert [i["title"] for i in since["items"]] == ["n3", "n4"]


def test_read_unread_read_all_and_dismiss(server: ServerProcess, uid: str) -> None:
    u = f"r-{uid}"
    ids = [publish(server, recipients=[u], title=f"n{i}", type="like" if i else "comment")
           .json()["ids"][u] for i in range(3)]
    with server.subscriber(u) as c:
        r = c.patch(f"/api/notifications/{ids[0]}", json={"read": True})
        assert r.status_code == 200 and r.json()["read"] is True and "readAt" in r.json()
        assert c.get("/api/notifications/unread-count").json()["unreadCount"] == 2
        assert c.patch(f"/api/notifications/{ids[0]}", json={"read": False}).json()["read"] is False
        assert c.get(f"/api/notifications/{ids[1]}").json()["id"] == ids[1]
        r = c.post("/api/notifications/read-all", json={"type": "like"})
        assert r.json()["unreadCount"] == 1 and sorted(r.json()["ids"]) == sorted(ids[1:])
        unread = c.get("/api/notifications", params={"unread": "true"}).json()["items"]
        assert [i["id"] for i in unread] == [ids[0]]
        assert c.post("/api/notifications/read-all").json()["unreadCount"] == 0
        r = c.delete(f"/api/notifications/{ids[2]}")
        assert r.status_code == 200 and r.json()["ids"] == [ids[2]]
        assert c.get(f"/api/notifications/{ids[2]}").status_code == 404
        assert c.delete(f"/api/notifications/{ids[2]}").status_code == 404


def test_another_users_notification_is_404(server: ServerProcess, uid: str) -> None:
    nid = publish(server, recipients=[f"owner-{uid}"]).json()["ids"][f"owner-{uid}"]
    with server.subscriber(f"intruder-{uid}") as c:
        for r in (c.get(f"/api/notifications/{nid}"),
                  c.patch(f"/api/notifications/{nid}", json={"read": True}),
                  c.delete(f"/api/notifications/{nid}")):
            assert r.status_code == 404
            assert r.json()["error"]["code"] == "not_found"
    with server.subscriber(f"owner-{uid}") as c:
        assert c.get(f"/api/notifications/{nid}").json()["read"] is False


def test_ttl_sets_expiry(server: ServerProcess, uid: str) -> None:
    u = f"ttl-{uid}"
    publish(server, recipients=[u], ttl=3600)
    with server.subscriber(u) as c:
        item = c.get("/api/notifications").json()["items"][0]
    assert item["expiresAt"] - item["timestamp"] == 3_600_000
