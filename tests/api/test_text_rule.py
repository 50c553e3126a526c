"""Issue 21 item 7: one rule for the text a client sends (``tocsin/text.py``), the
same 400 naming the field on SQLite and PostgreSQL.

PostgreSQL refuses NUL in text with a driver error: every route below answered 500
there (with a traceback in the log) while SQLite stored the value or answered 404.
Each case runs against a real ``tocsin serve`` on both databases.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess
from tocsin.text import check_name, check_names, check_text

NUL = "\x00"


def _client(srv: ServerProcess, credential: str) -> httpx.Client:
    # No keep-alive: a 500 closed the connection under the next request of the case list.
    return httpx.Client(base_url=srv.url, timeout=10,
                        headers={"Authorization": f"Bearer {credential}"},
                        limits=httpx.Limits(max_keepalive_connections=0))


@pytest.fixture
def publisher(server: ServerProcess) -> Iterator[httpx.Client]:
    with _client(server, server.api_key) as c:
        yield c


@pytest.fixture
def subscriber(server: ServerProcess, uid: str) -> Iterator[httpx.Client]:
    with _client(server, server.token(uid, ["*"])) as c:
        yield c


def send(c: httpx.Client, method: str, path: str, body: Any = None,
         params: dict[str, str] | None = None) -> httpx.Response:
    """``body`` as JSON with every non-ASCII character escaped (``\\u0000`` on the wire)."""
    content = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    return c.request(method, path, content=content, headers=headers, params=params)


def assert_refused(r: httpx.Response, field: str, server: ServerProcess) -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_field" and err["field"] == field, r.text
    assert "Traceback" not in server.log()


# -- the rule itself ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["\x00", "a\x0bb", "a\nb", "x\x7f", "\x85", "\x9f", "\ud800"])
def test_names_refuse_control_characters_and_surrogates(bad: str) -> None:
    with pytest.raises(ValueError):
        check_name(bad)
    with pytest.raises(ValueError, match="item 1"):
        check_names(["ok", bad])


@pytest.mark.parametrize("good", ["mention", "team:a/b c", "Zoë ✓", "\u00a0", "\u2028x"])
def test_names_keep_printable_text(good: str) -> None:
    assert check_name(good) == good and check_names([good, good]) == [good, good]


def test_free_text_refuses_only_nul_and_surrogates() -> None:
    assert check_text("line 1\nline 2\ttab\r\x0b\x85") == "line 1\nline 2\ttab\r\x0b\x85"
    for bad in ("a\x00", "\udfff"):
        with pytest.raises(ValueError):
            check_text(bad)


# -- subscriber-reachable routes ---------------------------------------------------------
SUBSCRIBER_CASES = [
    ("GET", "/api/notifications/%00", None, None, "id"),
    ("PATCH", "/api/notifications/%00", {"read": True}, None, "id"),
    ("DELETE", "/api/notifications/%00", None, None, "id"),
    ("POST", "/api/notifications/%00/snooze", {"until": 4_000_000_000_000}, None, "id"),
    ("DELETE", "/api/notifications/%00/snooze", None, None, "id"),
    ("POST", "/api/notifications/%00/ack", None, None, "id"),
    ("GET", "/api/notifications", None, {"type": NUL}, "type"),
    ("GET", "/api/notifications", None, {"source": NUL}, "source"),
    ("GET", "/api/notifications", None, {"type": "a\x1fb"}, "type"),
    ("POST", "/api/notifications/read-all", {"type": NUL}, None, "type"),
    ("DELETE", "/api/push-subscriptions/%00", None, None, "id"),
    ("PUT", "/api/preferences", {"types": {"a\x85": {}}}, None, "types"),
]


@pytest.mark.parametrize(("method", "path", "body", "params", "field"), SUBSCRIBER_CASES,
                         ids=[f"{c[0]} {c[1]} {c[3] or ''}" for c in SUBSCRIBER_CASES])
def test_subscriber_routes_answer_400_naming_the_field(
        server: ServerProcess, subscriber: httpx.Client, method: str, path: str,
        body: Any, params: dict[str, str] | None, field: str) -> None:
    assert_refused(send(subscriber, method, path, body, params), field, server)


# -- publisher-reachable routes ----------------------------------------------------------
PUBLISH = {"type": "t", "title": "hello"}
PUBLISH_CASES = [
    ("title", "a\x00"), ("type", "a\x00"), ("body", "a\x00"), ("recipients", [NUL]),
    ("actor", NUL), ("source", NUL), ("groupKey", NUL), ("idempotencyKey", NUL),
    ("escalation", NUL),
    ("type", "t\x0bype"),  # item 8: such a type made its emails' unsubscribe link fail
    ("actor", "a\x85"), ("recipients", ["ok", "x\ny"]),
]


@pytest.mark.parametrize(("field", "value"), PUBLISH_CASES,
                         ids=[f"{f}={v!r}" for f, v in PUBLISH_CASES])
def test_publish_refuses_nul_and_control_characters_in_names(
        server: ServerProcess, publisher: httpx.Client, uid: str, field: str,
        value: object) -> None:
    body = {"recipients": [uid], **PUBLISH, field: value}
    assert_refused(send(publisher, "POST", "/api/notifications", body), field, server)
    with server.subscriber(uid) as sub:
        assert sub.get("/api/notifications").json()["items"] == []  # nothing stored


def test_free_text_keeps_line_breaks_and_data_may_hold_nul(
        server: ServerProcess, publisher: httpx.Client, uid: str) -> None:
    body = {"recipients": [uid], "type": "t", "title": "a\tb", "body": "1\n2\r\n3",
            "data": {"k\x00": "v\x00"}}
    r = send(publisher, "POST", "/api/notifications", body)
    assert r.status_code == 201, r.text
    with server.subscriber(uid) as sub:
        [item] = sub.get("/api/notifications").json()["items"]
    assert (item["title"], item["body"], item["data"]) == ("a\tb", "1\n2\r\n3",
                                                          {"k\x00": "v\x00"})


OTHER_PUBLISHER_CASES = [
    ("GET", "/api/incidents/%00", None, "id"),
    ("PATCH", "/api/notifications/by-key/%00", {"title": "x"}, "key"),
    ("DELETE", "/api/notifications/by-key/%00", None, "key"),
    ("PATCH", "/api/notifications/by-key/k", {"title": "x\x00"}, "title"),
    ("POST", "/api/topics/tx/events", {"type": NUL, "title": "t"}, "type"),
    ("POST", "/api/topics/tx/events", {"type": "t", "title": NUL}, "title"),
    ("POST", "/api/topics/tx/events", {"type": "t", "title": "t", "actor": NUL}, "actor"),
    ("POST", "/api/tokens", {"user": "a\x00b"}, "user"),
    ("GET", "/api/users/%00/presence", None, "user"),
    ("PUT", "/api/preferences/defaults", {"types": {NUL: {}}}, "types"),
    # a stored target becomes a recipient when the step's timer runs: it failed
    # there on every run, for ever
    ("PUT", "/api/escalation-policies/nul-target",
     {"steps": [{"targets": ["ok", NUL], "waitSeconds": 1}]}, "steps.0.targets"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), OTHER_PUBLISHER_CASES,
                         ids=[f"{c[0]} {c[1]} {c[3]}" for c in OTHER_PUBLISHER_CASES])
def test_other_publisher_routes_answer_400_naming_the_field(
        server: ServerProcess, publisher: httpx.Client, method: str, path: str,
        body: Any, field: str) -> None:
    assert_refused(send(publisher, method, path, body), field, server)


def test_policy_with_a_nul_target_is_not_stored(server: ServerProcess,
                                                publisher: httpx.Client) -> None:
    send(publisher, "PUT", "/api/escalation-policies/nul-target2",
         {"steps": [{"targets": [NUL], "waitSeconds": 1}]})
    assert publisher.get("/api/escalation-policies/nul-target2").status_code == 404


def test_token_with_a_nul_sub_is_refused(server: ServerProcess) -> None:
    with _client(server, server.token("a\x00b")) as c:
        r = c.get("/api/notifications")
        assert r.status_code == 401, r.text
        assert "'sub'" in r.json()["error"]["message"]
        with c.stream("GET", "/api/notifications/stream") as s:
            assert s.status_code == 401
    assert "Traceback" not in server.log()
