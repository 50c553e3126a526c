"""Topic feeds over HTTP."""

from __future__ import annotations

import httpx

from tests.support.ids import seq_of, with_seq
from tests.support.server import ServerProcess


def test_post_and_history(server: ServerProcess, uid: str) -> None:
    topic = f"project:{uid}"
    with server.publisher() as pub:
        for i in range(3):
            r = pub.post(f"/api/topics/{topic}/events",
                         json={"type": "commit", "title": f"c{i}", "actor": "ci", "data": {"i": i}})
            assert r.status_code == 201
        last = r.json()["id"]
        assert seq_of(last) == 3 and r.json()["topic"] == topic
        hist = pub.get(f"/api/topics/{topic}/events", params={"limit": 2}).json()
    assert [e["title"] for e in hist["items"]] == ["c2", "c1"]
    assert hist["nextCursor"] == with_seq(last, 2) and hist["lastEventId"] == last
    with server.subscriber(uid, topics=["project:*"]) as sub:
        older = sub.get(f"/api/topics/{topic}/events", params={"before": with_seq(last, 2)}).json()
        assert [e["title"] for e in older["items"]] == ["c0"]
        since = sub.get(f"/api/topics/{topic}/events", params={"since": with_seq(last, 1)}).json()
        assert [e["id"] for e in since["items"]] == [with_seq(last, 2), last]


def test_subscriber_posts_as_itself_only_to_allowed_topics(server: ServerProcess, uid: str) -> None:
    topic = f"room-{uid}"
    with server.subscriber(f"alice-{uid}", topics=[topic]) as sub:
        r = sub.post(f"/api/topics/{topic}/events",
                     json={"type": "like", "title": "liked", "actor": "someone-else"})
        assert r.status_code == 201 and r.json()["actor"] == f"alice-{uid}"
        r = sub.post(f"/api/topics/elsewhere-{uid}/events", json={"type": "x", "title": "y"})
        assert r.status_code == 403
    with server.subscriber(f"nobody-{uid}") as sub:  # no topics claim: reads no topic
        assert sub.get(f"/api/topics/{topic}/events").status_code == 403


def test_invalid_topic_name(server: ServerProcess, uid: str) -> None:
    with server.publisher() as pub:
        r = pub.post("/api/topics/bad topic!/events", json={"type": "x", "title": "y"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "topic"


def test_health_ready_stats_metrics_openapi(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    with server.publisher() as pub:
        stats = pub.get("/api/stats").json()
    assert stats["broker"] == {"url": "memory://", "healthy": True}
    assert isinstance(stats["connections"], int)
    assert "tocsin_connections" in httpx.get(server.url + "/metrics").text
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/api/notifications/stream" in spec["paths"]
    assert httpx.get(server.url + "/docs").status_code == 200
