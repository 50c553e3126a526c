"""Bad input: a clear JSON error with a 4xx status, and nothing written."""

from __future__ import annotations

import pytest

from tests.support.server import ServerProcess

VALID = {"recipients": ["victim"], "type": "comment", "title": "ok"}


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"priority": "critical"}, 400, "invalid_field", "priority"),
        ({"title": None}, 400, "invalid_field", "title"),
        ({"title": "x" * 201}, 400, "too_long", "title"),
        ({"body": "é" * 2049}, 400, "too_large", "body"),  # 4098 bytes
        ({"data": {"blob": "x" * 16_400}}, 400, "too_large", "data"),
        ({"recipients": [f"u{i}" for i in range(10_001)]}, 400, "too_many_recipients",
         "recipients"),
        ({"recipients": []}, 400, "invalid_field", "recipients"),
        ({"url": "javascript:alert(1)"}, 400, "invalid_field", "url"),
        ({"unknownField": 1}, 400, "invalid_field", "unknownField"),
        ({"ttl": -5}, 400, "invalid_field", "ttl"),
    ],
)
def test_invalid_publish_is_rejected_and_writes_nothing(
    server: ServerProcess, uid: str, change: dict[str, object], status: int, code: str,
    field: str,
) -> None:
    body = {**VALID, "recipients": [f"victim-{uid}"], **change}
    if "recipients" in change:
        body["recipients"] = change["recipients"]
    with server.publisher() as c:
        r = c.post("/api/notifications", json=body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["field"] == field and err["message"]
    with server.subscriber(f"victim-{uid}") as c:
        assert c.get("/api/notifications").json()["items"] == []


def test_missing_title(server: ServerProcess, uid: str) -> None:
    with server.publisher() as c:
        r = c.post("/api/notifications", json={"recipients": [uid], "type": "x"})
    assert r.status_code == 400
    assert r.json()["error"] == {"code": "missing_field", "message": "'title' is required.",
                                 "field": "title"}


def test_malformed_json(server: ServerProcess) -> None:
    with server.publisher() as c:
        r = c.post("/api/notifications", content=b'{"recipients": ["a"], "title": ',
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("cursor", ["abc", "-1", "1e5", "9" * 30])
def test_bad_cursor(server: ServerProcess, uid: str, cursor: str) -> None:
    with server.subscriber(uid) as c:
        r = c.get("/api/notifications", params={"before": cursor})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "bad_cursor"
        assert r.json()["error"]["field"] == "before"
        assert c.get("/api/notifications", params={"since": cursor}).status_code == 400


def test_unknown_route_and_limit(server: ServerProcess, uid: str) -> None:
    with server.subscriber(uid) as c:
        r = c.get("/api/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = c.get("/api/notifications", params={"limit": 201})
        assert r.status_code == 400 and r.json()["error"]["field"] == "limit"


def test_oversized_request_body_is_413(server: ServerProcess) -> None:
    with server.publisher() as c:
        r = c.post("/api/notifications", content=b'{"recipients": ["' + b"x" * 9_000_000 + b'"]}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_unknown_priority_filter(server: ServerProcess, uid: str) -> None:
    with server.subscriber(uid) as c:
        r = c.get("/api/notifications", params={"priority": "critical"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "priority"
