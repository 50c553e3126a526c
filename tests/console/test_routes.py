"""The console's own routes on SQLite and PostgreSQL (a real ``tocsin serve
--console``): incidents open and recent, in order; figures count what happened."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ids import uid
from tests.support.server import ServerProcess, start_server
from tests.support.services import database_url, drop_pg_schema
from tests.support.wait import wait_until


@pytest.fixture(params=["sqlite", "postgres"])
def srv(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    url, schema = database_url(request.param, tmp_path)
    s = start_server(tmp_path, database=url, extra=["--console"])
    try:
        yield s
    finally:
        s.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))


def test_incidents_open_and_recent(srv: ServerProcess) -> None:
    a, policy = uid("a"), uid("p")
    with srv.publisher() as pub:
        assert pub.put(f"/api/escalation-policies/{policy}", json={"steps": [
            {"targets": [a], "waitSeconds": 600, "skipIfNobodyActive": False}]}
        ).status_code in (200, 201)
        opened = []
        for n in range(3):
            r = pub.post("/api/notifications", json={
                "escalation": policy, "type": "alert", "title": f"incident {n}"})
            assert r.status_code == 201, r.text
            opened.append((r.json()["incident"], r.json()["ids"][a]))
        with srv.subscriber(a) as sub:
            assert sub.post(f"/api/notifications/{opened[0][1]}/ack").status_code == 200
        recent = pub.get("/api/console/incidents").json()["incidents"]
        mine = [i for i in recent if i["policy"] == policy]
        assert [i["id"] for i in mine] == [i for i, _ in reversed(opened)]
        assert [i["title"] for i in mine] == ["incident 2", "incident 1", "incident 0"]
        assert mine[-1]["state"] == "acked" and mine[-1]["ackedBy"] == a
        assert all(i["state"] == "open" for i in mine[:2])
        open_ = pub.get("/api/console/incidents", params={"state": "open"}).json()
        assert opened[0][0] not in {i["id"] for i in open_["incidents"]}
        assert len(pub.get("/api/console/incidents", params={"limit": 1}
                           ).json()["incidents"]) == 1


def test_figures_count_what_happened(srv: ServerProcess) -> None:
    with srv.publisher() as pub:
        before = pub.get("/api/console/figures").json()
        for _ in range(4):
            assert pub.post("/api/notifications", json={
                "recipients": ["x", "y"], "type": "t", "title": "t"}).status_code == 201

        def totals() -> dict[str, int]:
            samples = pub.get("/api/console/figures").json()["samples"]
            last: dict[str, int] = samples[-1]["totals"] if samples else {}
            return last

        wait_until(lambda: totals().get("publishes", 0) >= 4, 10, totals)
        body = pub.get("/api/console/figures").json()
    assert len(body["samples"]) > len(before["samples"])
    last = body["samples"][-1]
    assert last["broker"] == "ok" and last["database"] == "ok"
    assert set(last["connections"]) == {"sse", "ws", "poll"}
    assert sum(s["publishesPerSecond"] for s in body["samples"]) > 0
    assert sum(s["notificationsPerSecond"] for s in body["samples"]) >= \
        sum(s["publishesPerSecond"] for s in body["samples"])
