"""Live grouping, snooze and publisher update/retract against real ``tocsin serve``
processes on SQLite and PostgreSQL (docs/grouping.md), with a fake clock shared
through ``--test-clock-file`` for the snooze timer."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clock import FAST, Clock
from tests.support.server import ServerProcess, start_server
from tests.support.services import database_url
from tests.support.sse import replay_to_head
from tests.support.wait import wait_until


class Node:
    def __init__(self, tmp_path: Path, url: str, clock: Clock) -> None:
        self.tmp_path, self.url, self.clock = tmp_path, url, clock
        self.srv = self.start()

    def start(self) -> ServerProcess:
        return start_server(self.tmp_path, database=self.url,
                            extra=[*FAST, *self.clock.flags])

    def restart(self) -> None:
        self.srv.stop()
        self.srv = self.start()


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    from tests.support.services import drop_pg_schema

    url, schema = database_url(request.param, tmp_path)
    n = Node(tmp_path, url, Clock(tmp_path / "clock"))
    try:
        yield n
    finally:
        n.srv.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))


def replay(srv: ServerProcess, user: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event in the user's stream, replayed from before the first."""
    return [(e.event, e.data) for e in replay_to_head(srv.url, srv.token(user))
            if e.event not in ("message", "reset")]


def inbox(srv: ServerProcess, user: str) -> dict[str, Any]:
    with srv.subscriber(user) as sub:
        r = sub.get("/api/notifications")
        assert r.status_code == 200, r.text
        return dict(r.json())


def send(pub: httpx.Client, user: str, actor: str, key: str, **kw: Any) -> str:
    r = pub.post("/api/notifications", json={
        "recipients": [user], "type": "like", "title": f"{actor} liked your post",
        "actor": actor, "groupKey": key, **kw})
    assert r.status_code == 201, r.text
    return str(r.json()["ids"][user])


def test_publishes_with_one_group_key_update_one_row(node: Node) -> None:
    srv, user = node.srv, "u" + uuid.uuid4().hex[:8]
    with srv.publisher() as pub:
        ids = {send(pub, user, a, "post:1") for a in
               ["alice", "bob", "carol", "bob", "dave", "erin", "frank"]}
        assert len(ids) == 1
        other = send(pub, user, "zoe", "post:2")
        box = inbox(srv, user)
        assert box["unreadCount"] == 2
        top, second = box["items"]
        assert top["id"] == other and top["group"] == {"key": "post:2", "count": 1,
                                                       "actors": ["zoe"], "people": 1}
        assert second["id"] in ids and second["title"] == "frank liked your post"
        # seven publishes by six people (bob twice): `people` counts each once, past
        # the five actors shown (issue 22: "and 9 others" for six people)
        assert second["group"] == {"key": "post:1", "count": 7, "people": 6,
                                   "actors": ["frank", "erin", "dave", "bob", "carol"]}
        notes = [d for n, d in replay(srv, user) if n == "notification"]
        assert [d["group"]["count"] for d in notes] == [1, 2, 3, 4, 5, 6, 7, 1]
        assert [d["group"]["people"] for d in notes] == [1, 2, 3, 3, 4, 5, 6, 1]
        assert len({d["eventId"] for d in notes}) == 8
        assert notes[-2]["eventId"] == second["eventId"]
        # read: the group is closed, the next publish starts a new one
        with srv.subscriber(user) as sub:
            assert sub.patch(f"/api/notifications/{second['id']}",
                             json={"read": True}).status_code == 200
        fresh = send(pub, user, "gus", "post:1")
        assert fresh not in ids
        assert inbox(srv, user)["items"][0]["group"]["count"] == 1
        # with an idempotency key grouping still applies (the window: the next test)
        r = pub.post("/api/notifications", json={
            "recipients": [user], "type": "like", "title": "t", "actor": "hal",
            "groupKey": "post:1", "idempotencyKey": "k-" + user})
        assert r.json()["ids"][user] == fresh
        assert inbox(srv, user)["items"][0]["group"]["actors"] == ["hal", "gus"]


def test_concurrent_publishes_to_one_group_count_exactly(node: Node) -> None:
    srv, users = node.srv, ["c" + uuid.uuid4().hex[:8] for _ in range(3)]
    n = 60

    def one(i: int) -> None:
        with srv.publisher() as pub:
            r = pub.post("/api/notifications", json={
                "recipients": users, "type": "like", "title": "x", "actor": f"a{i}",
                "groupKey": "hot"})
            assert r.status_code == 201, r.text

    with ThreadPoolExecutor(12) as ex:
        list(ex.map(one, range(n)))
    for u in users:
        box = inbox(srv, u)
        assert len(box["items"]) == 1 and box["unreadCount"] == 1
        assert box["items"][0]["group"]["count"] == n
        counts = [d["group"]["count"] for name, d in replay(srv, u) if name == "notification"]
        assert counts == list(range(1, n + 1))


def test_snooze_hides_everywhere_and_comes_back_once_after_a_restart(node: Node) -> None:
    user = "s" + uuid.uuid4().hex[:8]
    with node.srv.publisher() as pub:
        r = pub.post("/api/notifications", json={"recipients": [user], "type": "t",
                                                  "title": "later"})
        nid = r.json()["ids"][user]
    until = node.clock.now + 600_000
    with node.srv.subscriber(user) as sub:
        assert sub.post(f"/api/notifications/{nid}/snooze",
                        json={"until": node.clock.now - 1}).status_code == 400
        assert sub.post("/api/notifications/nope/snooze",
                        json={"until": until}).status_code == 404
        r = sub.post(f"/api/notifications/{nid}/snooze", json={"until": until})
        assert r.status_code == 200, r.text
        assert r.json() == {"ids": [nid], "until": until, "unreadCount": 0}
    box = inbox(node.srv, user)
    assert box["items"] == [] and box["unreadCount"] == 0
    assert replay(node.srv, user)[-1] == ("snoozed", {"ids": [nid], "until": until,
                                                     "unreadCount": 0})
    node.restart()
    node.clock.advance(599)
    assert inbox(node.srv, user)["items"] == []
    node.clock.advance(2)
    items = wait_until(lambda: inbox(node.srv, user)["items"])
    assert [i["id"] for i in items] == [nid] and not items[0]["read"]
    assert inbox(node.srv, user)["unreadCount"] == 1
    node.clock.advance(3600)
    node.restart()  # a timer run again would emit a second event: there is none
    evs = replay(node.srv, user)
    assert [n for n, _ in evs] == ["notification", "snoozed", "notification"]
    assert evs[2][1]["id"] == nid and evs[2][1]["eventId"] != evs[0][1]["eventId"]


def test_snoozed_are_listed_and_woken_now_by_undo(node: Node) -> None:
    """Issue 22 item 12: ``?snoozed=true`` lists what is snoozed (with ``snoozedUntil``);
    ``DELETE …/snooze`` brings one back at once, as its timer would, once."""
    user = "w" + uuid.uuid4().hex[:8]
    with node.srv.publisher() as pub:
        nid = pub.post("/api/notifications", json={"recipients": [user], "type": "t",
                                                    "title": "later"}).json()["ids"][user]
        kept = pub.post("/api/notifications", json={"recipients": [user], "type": "t",
                                                     "title": "now"}).json()["ids"][user]
    until = node.clock.now + 600_000
    with node.srv.subscriber(user) as sub, node.srv.subscriber("x" + user) as other:
        r = sub.post(f"/api/notifications/{nid}/snooze", json={"until": until})
        assert r.status_code == 200
        snoozed = sub.get("/api/notifications", params={"snoozed": "true"}).json()
        assert [(i["id"], i["snoozedUntil"]) for i in snoozed["items"]] == [(nid, until)]
        assert [i["id"] for i in inbox(node.srv, user)["items"]] == [kept]
        assert "snoozedUntil" not in inbox(node.srv, user)["items"][0]
        assert other.delete(f"/api/notifications/{nid}/snooze").status_code == 404
        assert sub.delete(f"/api/notifications/{kept}/snooze").status_code == 404  # not snoozed
        r = sub.delete(f"/api/notifications/{nid}/snooze")
        assert r.status_code == 200 and r.json() == {"ids": [nid]}
        assert sub.delete(f"/api/notifications/{nid}/snooze").status_code == 404
        assert sub.get("/api/notifications", params={"snoozed": "true"}).json()["items"] == []
    box = inbox(node.srv, user)
    assert {i["id"] for i in box["items"]} == {nid, kept} and box["unreadCount"] == 2
    node.clock.advance(601)  # its timer finds nothing left to wake
    time.sleep(0.6)
    evs = replay(node.srv, user)
    assert [n for n, _ in evs] == ["notification", "notification", "snoozed", "notification"]


def test_update_and_retract_by_key(node: Node) -> None:
    srv = node.srv
    a, b = "p" + uuid.uuid4().hex[:8], "q" + uuid.uuid4().hex[:8]
    key = "order/" + a
    with srv.publisher() as pub:
        r = pub.post("/api/notifications", json={
            "recipients": [a, b], "type": "order", "title": "Secret draft",
            "idempotencyKey": key})
        ids = r.json()["ids"]
        assert pub.patch("/api/notifications/by-key/nope", json={"title": "x"}
                         ).status_code == 404
        assert pub.delete("/api/notifications/by-key/nope").status_code == 404
        assert pub.patch(f"/api/notifications/by-key/{key}", json={}).status_code == 400
        r = pub.patch(f"/api/notifications/by-key/{key}",
                      json={"title": "Shipped", "priority": "high", "data": {"n": 1}})
        assert r.status_code == 200, r.text
        assert r.json() == {"ids": ids}
        for u in (a, b):
            item = inbox(srv, u)["items"][0]
            assert (item["id"], item["title"], item["priority"], item["data"]) == (
                ids[u], "Shipped", "high", {"n": 1})
            name, data = replay(srv, u)[-1]
            assert name == "updated" and data["id"] == ids[u] and data["title"] == "Shipped"
        with srv.subscriber(b) as sub:  # b dismissed it: skipped by the retract
            assert sub.delete(f"/api/notifications/{ids[b]}").status_code == 200
        r = pub.delete(f"/api/notifications/by-key/{key}")
        assert r.status_code == 200 and r.json() == {"ids": {a: ids[a]}}
    box = inbox(srv, a)
    assert box["items"] == [] and box["unreadCount"] == 0
    evs = replay(srv, a)  # a client resuming from before the original publish
    assert [n for n, _ in evs] == ["deleted", "deleted", "deleted"]
    assert evs[-1][1] == {"ids": [ids[a]], "unreadCount": 0}
    assert "Secret" not in json.dumps(evs) and "Shipped" not in json.dumps(evs)


def test_a_publish_after_the_window_starts_a_new_group(node: Node) -> None:
    """The window (``--group-window``, 1 h by default) is judged by the server's
    injectable clock: frozen here, so only ``clock.advance`` moves it."""
    srv, user, clock = node.srv, "w" + uuid.uuid4().hex[:8], node.clock
    with srv.publisher() as pub:
        first = send(pub, user, "alice", "post:w")
        clock.advance(3599)  # the window slides with each publish
        assert send(pub, user, "bob", "post:w") == first
        clock.advance(3599)
        assert send(pub, user, "carol", "post:w") == first
        clock.advance(3601)  # quiet for longer than the window: closed
        fresh = send(pub, user, "dave", "post:w")
        assert fresh != first
    top, old = inbox(srv, user)["items"]
    assert top["id"] == fresh and top["group"] == {"key": "post:w", "count": 1,
                                                   "actors": ["dave"], "people": 1}
    assert old["id"] == first and old["group"]["count"] == 3


def test_grouped_and_updated_notifications_carry_the_recipients_silent(node: Node) -> None:
    srv, clock = node.srv, node.clock
    quiet, loud = "g" + uuid.uuid4().hex[:8], "h" + uuid.uuid4().hex[:8]
    with srv.subscriber(quiet) as sub:
        assert sub.put("/api/preferences", json={"dnd": {"until": clock.now + 600_000}}
                       ).status_code == 200
    with srv.publisher() as pub:
        for actor in ("alice", "bob"):
            r = pub.post("/api/notifications", json={
                "recipients": [quiet, loud], "type": "like", "title": "t", "actor": actor,
                "groupKey": "post:s"})
            assert r.status_code == 201 and r.json()["silent"] == {quiet: "dnd"}, r.text
        key = "upd-" + quiet
        r = pub.post("/api/notifications", json={
            "recipients": [quiet, loud], "type": "like", "title": "t", "actor": "carol",
            "groupKey": "post:s", "idempotencyKey": key})
        assert r.json()["silent"] == {quiet: "dnd"}
        assert pub.patch(f"/api/notifications/by-key/{key}", json={"title": "new"}
                         ).status_code == 200
    for user, silent in ((quiet, True), (loud, False)):
        (item,) = inbox(srv, user)["items"]
        assert item["group"]["count"] == 3 and item["silent"] is silent
        assert item.get("silentReason") == ("dnd" if silent else None)
        evs = [(n, d) for n, d in replay(srv, user) if n in ("notification", "updated")]
        assert [n for n, _ in evs] == ["notification"] * 3 + ["updated"]
        assert [(d["silent"], d.get("silentReason")) for _, d in evs] == [
            (silent, "dnd" if silent else None)] * 4
