"""``POST /api/notifications/bulk`` against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from tests.support.server import ServerProcess
from tests.support.sse import open_stream
from tocsin.api.bulk import BULK_MAX_BODY_BYTES

BULK = "/api/notifications/bulk"


def bulk(srv: ServerProcess, items: list[Any]) -> httpx.Response:
    with srv.publisher() as c:
        return c.post(BULK, json={"notifications": items})


def single(srv: ServerProcess, body: dict[str, Any]) -> httpx.Response:
    with srv.publisher() as c:
        return c.post("/api/notifications", json=body)


async def test_each_item_is_answered_alone_and_valid_ones_are_delivered(
        server: ServerProcess, uid: str) -> None:
    alice, bob = f"alice-{uid}", f"bob-{uid}"
    bad_title = {"recipients": [alice], "type": "comment", "title": ""}
    bad_field = {"recipients": [alice], "type": "comment", "title": "x", "colour": "red"}
    no_recipients = {"type": "comment", "title": "x"}
    async with await open_stream(server.url + "/api/notifications/stream",
                                 server.token(alice)) as stream:
        r = bulk(server, [
            {"recipients": [alice, bob], "type": "comment", "title": "one"},
            bad_title,
            {"recipients": [alice], "type": "comment", "title": "two", "groupKey": f"g{uid}"},
            bad_field,
            no_recipients,
            {"recipients": [alice], "type": "comment", "title": "three",
             "idempotencyKey": f"k-{uid}"},
            "not an object",
        ])
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == [201, 400, 201, 400, 400, 201, 400]
        # each invalid item gets exactly the error a single publish of it gets
        for i, body in ((1, bad_title), (3, bad_field), (4, no_recipients)):
            one = single(server, body)
            assert results[i] == {"status": one.status_code, **one.json()}, i
        assert results[6]["error"]["code"] == "malformed_json"
        assert set(results[0]["ids"]) == {alice, bob}
        await stream.wait_for(3)
        got = [(e.event, e.data["title"], e.data["id"]) for e in stream.events]
    # keyed and grouped items commit on their own, so in any order among the rest
    assert sorted(got, key=lambda g: g[1]) == [("notification", "one", results[0]["ids"][alice]),
                   ("notification", "three", results[5]["ids"][alice]),
                   ("notification", "two", results[2]["ids"][alice])]
    with server.subscriber(bob) as c:
        assert [n["title"] for n in c.get("/api/notifications").json()["items"]] == ["one"]


def test_idempotency_is_per_item(server: ServerProcess, uid: str) -> None:
    user = f"u-{uid}"

    def item(n: int, title: str = "t") -> dict[str, Any]:
        return {"recipients": [user], "type": "order", "title": title,
                "idempotencyKey": f"{uid}-{n}"}

    first = bulk(server, [item(1), item(2)]).json()["results"]
    again = bulk(server, [item(2), item(1), item(3), item(1, "changed")]).json()["results"]
    assert again[0] == first[1] and again[1] == first[0]
    assert again[2]["status"] == 201 and again[2]["ids"][user] not in (
        first[0]["ids"][user], first[1]["ids"][user])
    # the same key with another body: the single publish's 409, for that item alone
    assert again[3]["status"] == 409 and again[3]["error"]["code"] == "conflict"
    # a key stored by bulk is the single route's key too
    assert single(server, item(3)).json() == {"ids": again[2]["ids"]}
    with server.subscriber(user) as c:
        assert c.get("/api/notifications/unread-count").json() == {"unreadCount": 3}


def test_a_thousand_items_at_most(server: ServerProcess, uid: str) -> None:
    items = [{"recipients": [f"{uid}-{i}"], "type": "t", "title": str(i)}
             for i in range(1001)]
    r = bulk(server, items)
    assert r.status_code == 400 and r.json()["error"]["field"] == "notifications"
    with server.subscriber(f"{uid}-0") as c:  # nothing stored
        assert c.get("/api/notifications/unread-count").json() == {"unreadCount": 0}
    r = bulk(server, items[:1000])
    assert r.status_code == 200
    assert [x["status"] for x in r.json()["results"]] == [201] * 1000
    with server.subscriber(f"{uid}-999") as c:
        assert [n["title"] for n in c.get("/api/notifications").json()["items"]] == ["999"]
    for body in ({"notifications": []}, {"items": []}, [], {"notifications": [{}], "x": 1}):
        with server.publisher() as c:
            r = c.post(BULK, json=body)
        assert r.status_code == 400, body


def test_an_oversized_body_is_refused_before_it_is_read(server: ServerProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall((f"POST {BULK} HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {server.api_key}\r\n"
                   "Content-Type: application/json\r\n"
                   f"Content-Length: {BULK_MAX_BODY_BYTES + 1}\r\n\r\n").encode())
        # not a byte of the body sent: the reply comes anyway
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413"), head
    # a body within the limit but larger than the other routes' 8 MiB is read
    big = {"recipients": ["x"], "type": "t", "title": "t", "data": {"pad": "p" * 9000}}
    r = bulk(server, [big] * 1000)
    assert r.status_code == 200 and len(r.request.content) > 8 * 1024 * 1024
    assert {x["status"] for x in r.json()["results"]} == {201}


def test_chunked_bodies_are_cut_at_the_limit(server: ServerProcess) -> None:
    def chunks() -> Any:
        yield b'{"notifications": ["'
        for _ in range(BULK_MAX_BODY_BYTES // 65536 + 2):
            yield b"p" * 65536

    with server.publisher() as c:
        r = c.post(BULK, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
