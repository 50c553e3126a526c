"""Acknowledge and escalate against real ``tocsin serve`` processes, with a fake clock
shared by the nodes (``--test-clock-file``): policies, steps, acks on every node,
200 concurrent incidents over two nodes counted, a restart mid-policy, and steps
skipped (or not) by presence.

The targets of most tests hold no stream, so once presence is known their steps'
waits would be cut short (every step still notifies): those policies say
``skipIfNobodyActive: false`` (``policy(skip=False)``), that is not what they test."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clock import FAST, T0, Clock, clocked_server
from tests.support.server import ServerProcess, start_server
from tests.support.services import PG_URL, drop_pg_schema, need_postgres, need_redis
from tests.support.sse import replay_to_head
from tests.support.wait import wait_until


def incident(pub: httpx.Client, id: str) -> dict[str, Any]:
    r = pub.get(f"/api/incidents/{id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def notified(inc: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [(e["round"], e["step"], e["user"]) for e in inc["timeline"]
            if e["kind"] == "notified"]


def policy(*targets: list[str], wait: int = 60, repeat: int = 0,
           skip: bool | None = False) -> dict[str, Any]:
    """``skip``: every step's ``skipIfNobodyActive`` (``None``: left to the default)."""
    opt = {} if skip is None else {"skipIfNobodyActive": skip}
    return {"steps": [{"targets": t, "waitSeconds": wait, **opt} for t in targets],
            "repeat": repeat}


def acked_events(srv: ServerProcess, user: str) -> list[dict[str, Any]]:
    """The ``acked`` events in the user's stream (replayed from the start to its head)."""
    return [e.data for e in replay_to_head(srv.url, srv.token(user)) if e.event == "acked"]


@pytest.fixture(params=["sqlite", "postgres"])
def clocked(request: pytest.FixtureRequest, tmp_path: Path
            ) -> Iterator[tuple[ServerProcess, Clock]]:
    with clocked_server(request.param, tmp_path) as served:
        yield served


def test_policy_routes_and_malformed_policies(clocked: tuple[ServerProcess, Clock]) -> None:
    srv, _ = clocked
    name = "p-" + uuid.uuid4().hex[:8]
    with srv.publisher() as pub:
        assert pub.get(f"/api/escalation-policies/{name}").status_code == 404
        r = pub.put(f"/api/escalation-policies/{name}",
                    json=policy(["a"], ["b"], repeat=2, skip=None))
        assert r.status_code == 201, r.text
        assert r.json()["steps"][1] == {"targets": ["b"], "waitSeconds": 60,
                                        "skipIfNobodyActive": True}
        r = pub.put(f"/api/escalation-policies/{name}", json=policy(["c"]))
        assert r.status_code == 200 and r.json()["repeat"] == 0
        assert pub.get(f"/api/escalation-policies/{name}").json()["steps"][0]["targets"] == ["c"]
        for bad in [{}, {"steps": []}, {"steps": [{"targets": [], "waitSeconds": 1}]},
                    {"steps": [{"targets": ["a"], "waitSeconds": -1}]},
                    {"steps": [{"targets": ["a"]}]}, {"steps": "x"}, [1],
                    {"steps": [{"targets": ["a"], "waitSeconds": 1}], "repeat": -1},
                    {"steps": [{"targets": ["a"], "waitSeconds": 1}], "extra": 1}]:
            r = pub.put(f"/api/escalation-policies/{name}", json=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["error"]["code"] in ("invalid_field", "missing_field"), r.text
        assert pub.put("/api/escalation-policies/bad%20name", json=policy(["a"])
                       ).status_code == 400
        r = pub.post("/api/notifications", json={"type": "x", "title": "t",
                                                 "escalation": "no-such-policy"})
        assert r.status_code == 400 and r.json()["error"]["field"] == "escalation"
        assert pub.delete(f"/api/escalation-policies/{name}").status_code == 200
        assert pub.delete(f"/api/escalation-policies/{name}").status_code == 404
        assert pub.get("/api/incidents/nope").status_code == 404
    with srv.subscriber("u") as sub:
        assert sub.put(f"/api/escalation-policies/{name}", json=policy(["a"])
                       ).status_code == 403
        assert sub.post("/api/notifications/nope/ack").status_code == 404


def test_a_policy_runs_all_its_steps_with_a_fake_clock(
        clocked: tuple[ServerProcess, Clock]) -> None:
    srv, clock = clocked
    u = uuid.uuid4().hex[:8]
    a, b, c = f"a{u}", f"b{u}", f"c{u}"
    with srv.publisher() as pub:
        assert pub.put(f"/api/escalation-policies/{u}",
                       json=policy([a], [b, c], wait=60, repeat=1)).status_code == 201
        r = pub.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                 "title": "DB down", "priority": "urgent"})
        assert r.status_code == 201, r.text
        inc_id, ids = r.json()["incident"], r.json()["ids"]
        assert list(ids) == [a]
        inc = incident(pub, inc_id)
        assert notified(inc) == [(1, 1, a)] and inc["next"] == {"round": 1, "step": 2,
                                                                   "at": T0 + 60_000}
        # presence is known from the start on one node: no tab, not active
        assert inc["timeline"][0]["active"] is False and inc["timeline"][0]["at"] == T0
        clock.advance(59)
        time.sleep(0.5)
        assert notified(incident(pub, inc_id)) == [(1, 1, a)]  # not due yet
        expected = [(1, 1, a), (1, 2, b), (1, 2, c), (2, 1, a), (2, 2, b), (2, 2, c)]
        for n in (3, 4, 6):
            clock.advance(60)
            wait_until(lambda n=n: len(notified(incident(pub, inc_id))) == n)
        assert notified(incident(pub, inc_id)) == expected
        clock.advance(60)
        done = wait_until(lambda: (i := incident(pub, inc_id))["state"] == "exhausted" and i)
        assert done["timeline"][-1]["kind"] == "exhausted" and done["next"] is None
    with srv.subscriber(b) as sub:
        items = sub.get("/api/notifications").json()["items"]
        assert [i["data"]["escalation"]["round"] for i in items] == [2, 1]
        assert {i["data"]["incident"] for i in items} == {inc_id}
        assert items[1]["data"]["escalation"] == {"round": 1, "step": 2, "nextAt": T0 + 179_000,
                                                  "targets": [b, c]}
        assert items[0]["data"]["escalation"]["nextAt"] is None  # the last step


def test_ack_stops_it_and_every_recipient_gets_acked(
        clocked: tuple[ServerProcess, Clock]) -> None:
    srv, clock = clocked
    u = uuid.uuid4().hex[:8]
    a, b = f"a{u}", f"b{u}"
    with srv.publisher() as pub:
        pub.put(f"/api/escalation-policies/{u}", json=policy([a], [b], [a], wait=30))
        r = pub.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                 "title": "Disk full", "priority": "urgent"})
        inc_id = r.json()["incident"]
        clock.advance(30)
        wait_until(lambda: len(notified(incident(pub, inc_id))) == 2)
        with srv.subscriber(b) as sub:
            nid = sub.get("/api/notifications").json()["items"][0]["id"]
            with srv.subscriber(a) as other:  # not b's notification: 404
                assert other.post(f"/api/notifications/{nid}/ack").status_code == 404
            r = sub.post(f"/api/notifications/{nid}/ack")
            assert r.status_code == 200, r.text
            assert r.json() == {"incident": inc_id, "state": "acked", "ackedBy": b,
                                "ackedAt": T0 + 30_000}
            assert sub.post(f"/api/notifications/{nid}/ack").json()["ackedBy"] == b
            assert sub.get(f"/api/notifications/{nid}").json()["read"] is False
        clock.advance(120)
        time.sleep(0.6)
        inc = incident(pub, inc_id)
        assert notified(inc) == [(1, 1, a), (1, 2, b)] and inc["state"] == "acked"
        assert inc["timeline"][-1] == {"kind": "acked", "at": T0 + 30_000, "user": b}
    for user in (a, b):
        (ev,) = acked_events(srv, user)
        assert ev["incident"] == inc_id and ev["by"] == b and ev["at"] == T0 + 30_000
        # Issue 22 item 8: listings carry the ack (who, when), so a page opened after it
        # shows the incident acknowledged without the `acked` event; each step's copy
        # names who holds the incident at that step.
        with srv.subscriber(user) as sub:
            (item,) = sub.get("/api/notifications").json()["items"]
            assert item["acked"] == {"by": b, "at": T0 + 30_000}
            assert sub.get(f"/api/notifications/{item['id']}").json()["acked"] == item["acked"]
            assert item["data"]["escalation"]["targets"] == [user]


def test_a_restart_mid_policy_continues_from_the_right_step(tmp_path: Path) -> None:
    clock = Clock(tmp_path / "clock")
    extra = [*FAST, *clock.flags]
    db = f"sqlite+aiosqlite:///{tmp_path / 'tocsin.db'}"
    u = uuid.uuid4().hex[:8]
    srv = start_server(tmp_path, database=db, extra=extra)
    try:
        with srv.publisher() as pub:
            pub.put(f"/api/escalation-policies/{u}",
                    json=policy(["s1"], ["s2"], ["s3"], ["s4"], wait=60))
            inc_id = pub.post("/api/notifications", json={
                "escalation": u, "type": "alert", "title": "x"}).json()["incident"]
            clock.advance(60)
            wait_until(lambda: len(notified(incident(pub, inc_id))) == 2)
        srv.kill()  # SIGKILL mid-policy; step 3 comes due while no node runs
        clock.advance(120)
        srv = start_server(tmp_path, database=db, extra=extra)
        with srv.publisher() as pub:
            wait_until(lambda: len(notified(incident(pub, inc_id))) == 3)
            time.sleep(0.5)
            inc = incident(pub, inc_id)
            assert [s for _, s, _ in notified(inc)] == [1, 2, 3]  # step 3 once, no repeat
            assert inc["next"]["step"] == 4
            clock.advance(60)
            wait_until(lambda: len(notified(incident(pub, inc_id))) == 4)
    finally:
        srv.stop()


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[list[ServerProcess], Clock]]:
    need_postgres()
    need_redis()
    schema = "esc_" + uuid.uuid4().hex[:10]
    clock = Clock(tmp_path / "clock")
    url = f"{PG_URL}?schema={schema}"
    broker = f"redis://127.0.0.1:6379/0?channel=esc-{uuid.uuid4().hex[:8]}"
    extra = [*FAST, *clock.flags]
    nodes: list[ServerProcess] = []
    try:
        for i in range(2):
            d = tmp_path / f"n{i}"
            d.mkdir()
            nodes.append(start_server(d, database=url, broker=broker, extra=extra))
        yield nodes, clock
    finally:
        for n in nodes:
            n.stop()
        asyncio.run(drop_pg_schema(schema))


def test_ack_on_one_node_stops_it_on_every_node(
        two_nodes: tuple[list[ServerProcess], Clock]) -> None:
    (n1, n2), clock = two_nodes
    u = uuid.uuid4().hex[:8]
    with n1.publisher() as pub1, n2.publisher() as pub2:
        pub1.put(f"/api/escalation-policies/{u}", json=policy(["x" + u], ["y" + u], wait=10,
                                                                repeat=3))
        inc_id = pub2.post("/api/notifications", json={
            "escalation": u, "type": "alert", "title": "x"}).json()["incident"]
        with n2.subscriber("x" + u) as sub:
            nid = sub.get("/api/notifications").json()["items"][0]["id"]
            assert sub.post(f"/api/notifications/{nid}/ack").status_code == 200
        for _ in range(5):
            clock.advance(10)
            time.sleep(0.3)
        assert notified(incident(pub1, inc_id)) == [(1, 1, "x" + u)]
        assert incident(pub1, inc_id)["state"] == "acked"
    (ev,) = acked_events(n1, "x" + u)
    assert ev["incident"] == inc_id


def test_200_concurrent_incidents_over_two_nodes_fire_each_step_once(
        two_nodes: tuple[list[ServerProcess], Clock]) -> None:
    nodes, clock = two_nodes
    u = uuid.uuid4().hex[:8]
    users = [f"{s}{u}" for s in ("one", "two", "three")]
    with nodes[0].publisher() as pub:
        assert pub.put(f"/api/escalation-policies/{u}",
                       json=policy([users[0]], [users[1]], [users[2]], wait=30)
                       ).status_code == 201

    def open_one(i: int) -> str:
        with nodes[i % 2].publisher() as p:
            r = p.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                   "title": f"incident {i}"})
            assert r.status_code == 201, r.text
            return str(r.json()["incident"])

    with ThreadPoolExecutor(16) as ex:
        ids = list(ex.map(open_one, range(200)))
    with nodes[1].publisher() as pub:
        for n in (2, 3):  # each step is due 30 s after the previous one fired
            clock.advance(30)
            wait_until(lambda n=n: all(len(notified(incident(pub, i))) >= n for i in ids),
                       within=90)
        clock.advance(30)
        wait_until(lambda: all(incident(pub, i)["state"] == "exhausted" for i in ids),
                   within=90)
        steps: Counter[int] = Counter()
        for i in ids:
            got = notified(incident(pub, i))
            assert got == [(1, 1, users[0]), (1, 2, users[1]), (1, 3, users[2])], got
            steps.update(s for _, s, _ in got)
        assert steps == {1: 200, 2: 200, 3: 200}
    for user in users:  # one notification per incident in each inbox, no duplicate
        with nodes[0].subscriber(user) as sub:
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = sub.get("/api/notifications", params={
                    "limit": 200, **({"before": cursor} if cursor else {})}).json()
                seen += [it["data"]["incident"] for it in page["items"]]
                cursor = page["nextCursor"]
                if not cursor:
                    break
            assert Counter(seen) == dict.fromkeys(ids, 1)


# -- presence ---------------------------------------------------------------------------

@pytest.fixture
def present(tmp_path: Path) -> Iterator[tuple[ServerProcess, Clock]]:
    """A server whose presence is known (at once: one node on memory://)."""
    clock = Clock(tmp_path / "clock")
    srv = start_server(tmp_path, extra=[*FAST, *clock.flags,
                                        "--presence-interval", "300ms"])
    try:
        yield srv, clock
    finally:
        srv.stop()


def entries(inc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(e["kind"], e.get("round"), e.get("step"), e.get("user"), e.get("active"))
            for e in inc["timeline"]]


def test_a_step_whose_targets_have_no_tab_is_notified_and_the_next_is_due_at_once(
        present: tuple[ServerProcess, Clock]) -> None:
    """``skipIfNobodyActive`` only shortens the wait: the step's targets are notified
    all the same (issue 27: the people an incident must reach are exactly the ones
    without a tab open). Before the fix this step notified nobody (``ids`` empty)."""
    srv, _ = present
    u = uuid.uuid4().hex[:8]
    a, b = f"a{u}", f"b{u}"
    time.sleep(1)  # presence known (what it always is, on one node, since issue 21 #13)
    with srv.publisher() as pub:
        assert pub.put(f"/api/escalation-policies/{u}", json={"steps": [
            {"targets": [a], "waitSeconds": 60},  # skipIfNobodyActive: true (the default)
            {"targets": [b], "waitSeconds": 60, "skipIfNobodyActive": False}]}
        ).status_code == 201
        r = pub.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                 "title": "x"})
        assert r.status_code == 201 and list(r.json()["ids"]) == [a], r.text
        inc_id = r.json()["incident"]
        # step 2 is due at once (the fake clock never moved), b is notified, idle
        inc = wait_until(lambda: (i := incident(pub, inc_id))["timeline"][2:] and i)
        assert entries(inc) == [("notified", 1, 1, a, False), ("waitSkipped", 1, 1, None, None),
                                ("notified", 1, 2, b, False)]
        assert [e["at"] for e in inc["timeline"]] == [T0, T0, T0]
        assert inc["next"] == {"exhaustedAt": T0 + 60_000} and inc["state"] == "open"
    with srv.subscriber(a) as sub:
        (item,) = sub.get("/api/notifications").json()["items"]
        assert item["data"]["incident"] == inc_id


def test_a_target_with_a_visible_tab_is_notified_and_recorded_active(
        present: tuple[ServerProcess, Clock]) -> None:
    srv, clock = present
    u = uuid.uuid4().hex[:8]
    a, b = f"a{u}", f"b{u}"
    headers = {"Authorization": f"Bearer {srv.token(a)}"}
    with srv.publisher() as pub, httpx.Client(base_url=srv.url, headers=headers,
                                              timeout=10) as tab, \
            tab.stream("GET", "/api/notifications/stream") as stream:
        assert stream.status_code == 200
        assert tab.put("/api/presence", json={"state": "active"}).status_code == 200
        time.sleep(1)  # the tab's presence reached the table
        wait_until(lambda: pub.get(f"/api/users/{a}/presence").json()["state"] == "active")
        assert pub.put(f"/api/escalation-policies/{u}", json={"steps": [
            {"targets": [a, b], "waitSeconds": 30}, {"targets": [b], "waitSeconds": 30}]}
        ).status_code == 201
        r = pub.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                 "title": "x"})
        assert r.status_code == 201 and set(r.json()["ids"]) == {a, b}, r.text
        inc_id = r.json()["incident"]
        inc = incident(pub, inc_id)
        assert sorted(entries(inc)) == [("notified", 1, 1, a, True),
                                        ("notified", 1, 1, b, False)]
        assert inc["next"] == {"round": 1, "step": 2, "at": T0 + 30_000}
        clock.advance(30)  # step 2: b alone, no tab: notified, the end is due at once
        done = wait_until(lambda: (i := incident(pub, inc_id))["state"] == "exhausted" and i)
        assert entries(done)[2:] == [("notified", 1, 2, b, False),
                                     ("waitSkipped", 1, 2, None, None),
                                     ("exhausted", 1, None, None, None)]


def test_no_wait_is_cut_short_while_presence_is_unknown(tmp_path: Path) -> None:
    """A node of a cluster (Redis broker) trusts presence one interval after it
    starts (on memory:// it knows it at once)."""
    need_redis()
    clock = Clock(tmp_path / "clock")
    broker = f"redis://127.0.0.1:6379/0?channel=esc-{uuid.uuid4().hex[:8]}"
    srv = start_server(tmp_path, broker=broker,
                       extra=[*FAST, *clock.flags,
                              "--presence-interval", "10m"])  # unknown 10 min
    u = uuid.uuid4().hex[:8]
    try:
        with srv.publisher() as pub:
            assert pub.put(f"/api/escalation-policies/{u}", json=policy(
                [f"a{u}"], [f"b{u}"], wait=10, skip=True)).status_code == 201
            inc_id = pub.post("/api/notifications", json={
                "escalation": u, "type": "alert", "title": "x"}).json()["incident"]
            clock.advance(10)
            inc = wait_until(lambda: (i := incident(pub, inc_id))["timeline"][1:] and i)
            assert entries(inc) == [("notified", 1, 1, f"a{u}", None),
                                    ("notified", 1, 2, f"b{u}", None)]
    finally:
        srv.stop()


def test_the_publish_answer_names_the_first_steps_recipients_however_fast_the_poll(
        tmp_path: Path) -> None:
    """The first step runs before the publish answers, even with the node's own poll
    looking for due timers every millisecond: were its timer stored unleased, the poll
    could claim it first and the answer would leave with ``ids`` empty."""
    clock = Clock(tmp_path / "clock")
    srv = start_server(tmp_path, extra=["--timer-poll", "1ms", "--heartbeat", "1s",
                                        *clock.flags])
    u = uuid.uuid4().hex[:8]
    try:
        with srv.publisher() as pub:
            assert pub.put(f"/api/escalation-policies/{u}",
                           json=policy([f"a{u}"], wait=30)).status_code == 201

            def open_one(_: int) -> dict[str, Any]:
                with srv.publisher() as p:
                    r = p.post("/api/notifications", json={
                        "escalation": u, "type": "alert", "title": "x"})
                    assert r.status_code == 201, r.text
                    return dict(r.json())

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(open_one, range(120)))
            assert [sorted(a["ids"]) for a in answers] == [[f"a{u}"]] * 120
            # and the step ran once: one notified entry each, none from a poller too
            for a in answers[:10]:
                assert len(notified(incident(pub, a["incident"]))) == 1
    finally:
        srv.stop()
