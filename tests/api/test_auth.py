"""Who may call what: 401 for bad credentials, 403 for the wrong kind."""

from __future__ import annotations

import httpx

from tests.support.server import ServerProcess, mint


def test_missing_wrong_and_expired_credentials_are_401(server: ServerProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"},
                    {"Authorization": f"Bearer {mint('alice', ttl=-10)}"},
                    {"Authorization": f"Bearer {mint('alice', secret='x' * 40)}"}):
        r = httpx.get(server.url + "/api/notifications", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["code"] == "unauthorized"
    r = httpx.post(server.url + "/api/notifications", headers={"Authorization": "Bearer nope"},
                   json={"recipients": ["a"], "type": "t", "title": "t"})
    assert r.status_code == 401


def test_publisher_key_on_subscriber_routes_and_vice_versa_is_403(
    server: ServerProcess, uid: str
) -> None:
    with server.publisher() as pub:
        for r in (pub.get("/api/notifications"), pub.get("/api/notifications/unread-count"),
                  pub.get("/api/notifications/stream")):
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with server.subscriber(uid) as sub:
        r = sub.post("/api/notifications", json={"recipients": [uid], "type": "t", "title": "t"})
        assert r.status_code == 403
        assert sub.post("/api/tokens", json={"user": uid}).status_code == 403
        assert sub.get("/api/stats").status_code == 403


def test_token_by_header_cookie_and_query(server: ServerProcess, uid: str) -> None:
    tok = server.token(uid)
    url = server.url + "/api/notifications/unread-count"
    assert httpx.get(url, headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    assert httpx.get(url, cookies={"tocsin_token": tok}).status_code == 200
    assert httpx.get(url, params={"token": tok}).status_code == 200


def test_minted_token_works_and_carries_topics(server: ServerProcess, uid: str) -> None:
    with server.publisher() as pub:
        r = pub.post("/api/tokens", json={"user": uid, "topics": [f"team-{uid}:*"], "ttl": 60})
    assert r.status_code == 201
    body = r.json()
    assert body["expiresAt"] > 0
    h = {"Authorization": f"Bearer {body['token']}"}
    assert httpx.get(server.url + "/api/notifications", headers=h).status_code == 200
    ok = httpx.get(f"{server.url}/api/topics/team-{uid}:core/events", headers=h)
    assert ok.status_code == 200
    no = httpx.get(f"{server.url}/api/topics/other-{uid}/events", headers=h)
    assert no.status_code == 403
