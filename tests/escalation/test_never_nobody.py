"""An incident never pages nobody (issue 27), and a step that can never run stops and
says so (issue 21 #6), against real ``tocsin serve`` processes.

- docs/escalation.md's quick start, run as written (its curl commands, by bash) on a
  server whose presence is known and with no tab open: alice is notified.
- A first step that would have more than 100 targets is refused at publish (400
  naming the limit) instead of storing an incident whose step can never run.
- Preferences never withhold a step's notification; an urgent one reaches a
  closed tab by Web Push.
- A step whose stored policy no longer validates is given up at once (no retry for
  ever): the incident is ``failed`` with the reason, ``GET /api/incidents/{id}``
  answers 200, ``tocsin_timers_given_up_total`` counts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.channels.pushsvc import PushServiceThread
from tests.escalation.test_escalation import incident
from tests.support.clock import FAST, Clock
from tests.support.server import API_KEY, ServerProcess, start_server
from tests.support.services import PG_URL, database_url, drop_pg_schema
from tests.support.wait import wait_until
from tests.test_docs_commands import HOSTS, ROOT, curl_commands


@pytest.fixture
def known(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose presence is known (on one node it is from the start; the
    interval is short so that the code before the fix, which waited 1.5 intervals,
    knows it too, as it did in the issue's run a minute after the start)."""
    srv = start_server(tmp_path, extra=[*FAST, "--presence-interval", "300ms"])
    time.sleep(1)
    yield srv
    srv.stop()


def test_the_quick_start_as_written_notifies_alice_without_a_tab(known: ServerProcess) -> None:
    doc = (ROOT / "docs" / "escalation.md").read_text()
    put, post = curl_commands(doc)[:2]
    assert "escalation-policies/urgent" in put and '"escalation": "urgent"' in post
    env = {**os.environ, "PUBLISHER_KEY": API_KEY}
    answers = []
    for cmd in (put, post):
        proc = subprocess.run(["bash", "-c", f"{HOSTS.sub(known.url, cmd)} -sS"],
                              capture_output=True, text=True, env=env, timeout=30,
                              check=True)
        answers.append(json.loads(proc.stdout))
    reply = answers[1]
    assert list(reply["ids"]) == ["alice"], reply  # before the fix: {"ids": {}}
    with known.subscriber("alice") as alice:
        (item,) = alice.get("/api/notifications").json()["items"]
        assert item["id"] == reply["ids"]["alice"] and item["title"] == "DB down"
    with known.publisher() as pub:
        inc = incident(pub, reply["incident"])
        first = [e for e in inc["timeline"] if e.get("round") == 1 and e.get("step") == 1]
        assert [e["kind"] for e in first] == ["notified", "waitSkipped"], inc
        # nobody has a tab: every following step is due at once, and notifies too
        done = wait_until(lambda: (i := incident(pub, reply["incident"]))["state"]
                          == "exhausted" and i)
        users = [(e["round"], e["step"], e["user"]) for e in done["timeline"]
                 if e["kind"] == "notified"]
        assert sorted(users) == [(1, 1, "alice"), (1, 2, "bob"), (1, 2, "carol"),
                                 (2, 1, "alice"), (2, 2, "bob"), (2, 2, "carol")]


def test_a_first_step_over_100_targets_is_refused_at_publish(known: ServerProcess) -> None:
    u = uuid.uuid4().hex[:8]
    with known.publisher() as pub:
        assert pub.put(f"/api/escalation-policies/{u}", json={"steps": [
            {"targets": ["one"], "waitSeconds": 60}]}).status_code == 201
        r = pub.post("/api/notifications", json={
            "escalation": u, "type": "alert", "title": "x",
            "recipients": [f"r{i}" for i in range(100)]})
        assert r.status_code == 400, r.text  # before: 201 {"ids": {}}, a broken timer
        err = r.json()["error"]
        assert err["field"] == "recipients" and "at most 100" in err["message"], err
        r = pub.post("/api/notifications", json={  # 99 + 1 = 100: fine
            "escalation": u, "type": "alert", "title": "x",
            "recipients": [f"r{i}" for i in range(99)]})
        assert r.status_code == 201 and len(r.json()["ids"]) == 100, r.text


def corrupt_step_2(url: str, schema: str | None, inc_id: str, targets: list[str]) -> None:
    """Rewrite the incident's stored policy: step 2's targets become ``targets``."""
    if schema is None:
        db = sqlite3.connect(url.partition(":///")[2])
        with db:
            (raw,) = db.execute("SELECT policy FROM tocsin_incidents WHERE id = ?",
                                (inc_id,)).fetchone()
            policy = json.loads(raw)
            policy["steps"][1]["targets"] = targets
            db.execute("UPDATE tocsin_incidents SET policy = ? WHERE id = ?",
                       (json.dumps(policy), inc_id))
        db.close()
        return

    async def pg() -> None:
        import asyncpg

        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            table = f'"{schema}".tocsin_incidents'
            raw = await conn.fetchval(f"SELECT policy FROM {table} WHERE id = $1", inc_id)
            policy = json.loads(raw)
            policy["steps"][1]["targets"] = targets
            await conn.execute(f"UPDATE {table} SET policy = $1 WHERE id = $2",
                               json.dumps(policy), inc_id)
        finally:
            await conn.close()

    asyncio.run(pg())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_step_that_can_never_run_is_given_up_and_shown_failed(
        backend: str, tmp_path: Path) -> None:
    """The stored policy turns invalid (as one stored before a limit was enforced at
    publish): on SQLite step 2 gets 101 targets (the step's validation refuses it);
    on PostgreSQL a target with a NUL character (valid JSON, but the database refuses
    the value: before, that timer failed for ever)."""
    url, schema = database_url(backend, tmp_path)
    clock = Clock(tmp_path / "clock")
    srv = start_server(tmp_path, database=url,
                       extra=[*FAST, *clock.flags])
    u = uuid.uuid4().hex[:8]
    try:
        with srv.publisher() as pub:
            assert pub.put(f"/api/escalation-policies/{u}", json={"steps": [
                {"targets": ["a"], "waitSeconds": 60, "skipIfNobodyActive": False},
                {"targets": ["b"], "waitSeconds": 60, "skipIfNobodyActive": False}]}
            ).status_code == 201
            inc_id = pub.post("/api/notifications", json={
                "escalation": u, "type": "alert", "title": "x"}).json()["incident"]
            corrupt_step_2(url, schema, inc_id, [f"t{i}" for i in range(101)]
                           if schema is None else ["b\x00"])
            clock.advance(60)
            done = wait_until(lambda: (r := pub.get(f"/api/incidents/{inc_id}")
                                       ).status_code == 200
                              and r.json()["state"] == "failed" and r.json(), within=15)
            assert done["next"] is None and done["error"], done
            assert done["timeline"][-1]["kind"] == "failed"
            assert done["timeline"][-1]["step"] == 2
            # counted once the timer is deleted, just after the incident was marked
            wait_until(lambda: re.search(
                r'tocsin_timers_given_up_total\{kind="escalation"\} 1\.0',
                pub.get("/metrics").text), within=10)
            # given up, not retried: no timer left, nothing more in the log
            time.sleep(1.5)
            assert srv.log().count("given up") == 1, srv.log()
            assert pub.get(f"/api/incidents/{inc_id}").status_code == 200
    finally:
        srv.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))


def test_a_target_who_left_the_type_out_of_the_inbox_still_gets_the_incident(
        known: ServerProcess) -> None:
    """Preferences decide how an incident's notification may interrupt, never whether
    it arrives: delivered silently (``silentReason: preferences``), no push or email.
    A plain publish of that type still skips them."""
    u = uuid.uuid4().hex[:8]
    target = f"t{u}"
    with known.subscriber(target) as sub:
        r = sub.put("/api/preferences", json={"types": {"alert": {"channels": []}}})
        assert r.status_code == 200, r.text
    with known.publisher() as pub:
        plain = pub.post("/api/notifications", json={"recipients": [target], "type": "alert",
                                                     "title": "plain"})
        assert plain.json() == {"ids": {}, "skipped": {target: "preferences"}}, plain.text
        assert pub.put(f"/api/escalation-policies/{u}", json={"steps": [
            {"targets": [target], "waitSeconds": 60}]}).status_code == 201
        r = pub.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                 "title": "DB down", "priority": "urgent"})
        assert r.status_code == 201 and list(r.json()["ids"]) == [target], r.text  # before: {}
    with known.subscriber(target) as sub:
        (item,) = sub.get("/api/notifications").json()["items"]
        assert item["title"] == "DB down" and item["silent"] is True
        assert item["silentReason"] == "preferences"


def test_an_urgent_step_reaches_a_closed_tab_by_push(tmp_path: Path) -> None:
    """Nobody has a tab open: the step's target gets the urgent notification on their
    device (before: the step was skipped, nothing was pushed)."""
    push = PushServiceThread().start()
    srv = start_server(tmp_path, extra=[*FAST, "--push-allow-insecure",
                                        "--presence-interval", "300ms"])
    u = uuid.uuid4().hex[:8]
    target = f"t{u}"
    try:
        time.sleep(1)  # presence known, also for the code before the fix (see `known`)
        push.service.expected_key = httpx.get(
            srv.url + "/api/push/vapid-public-key", timeout=5).json()["publicKey"]
        dev = push.device(target)
        with srv.subscriber(target) as sub:
            assert sub.post("/api/push-subscriptions", json=dev).status_code == 201
        with srv.publisher() as pub:
            assert pub.put(f"/api/escalation-policies/{u}", json={"steps": [
                {"targets": [target], "waitSeconds": 300}]}).status_code == 201
            r = pub.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                     "title": "DB down",
                                                     "priority": "urgent"})
            assert r.status_code == 201 and list(r.json()["ids"]) == [target], r.text
        (msg,) = push.wait(dev["endpoint"], within=15)
        assert msg["payload"]["id"] == r.json()["ids"][target]
    finally:
        srv.stop()
        push.stop()
