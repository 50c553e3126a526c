"""``--rate-publish`` counts the work a request makes (issue 21 #11), on a real
``tocsin serve``: a publish costs one token per recipient, an update or retract by
key one per copy it changed, an escalation its potential fan-out. The request is
admitted for one token before its body is read; the rest is charged once known, and
the debt makes the following requests wait (429 with its ``Retry-After``).

Before: with ``1/s:2`` publishes got 429 after two requests, but ten PATCH-by-key
updates of 1,000 recipients each all passed, and an escalation (up to ~22,000
notifications) cost one token."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.server import start_server


def test_publishes_updates_and_escalations_spend_one_token_per_notification(
        tmp_path: Path) -> None:
    srv = start_server(tmp_path, extra=["--rate-publish", "1/s:1500"])
    u = uuid.uuid4().hex[:8]
    many = [f"r{i}-{u}" for i in range(1000)]
    try:
        with srv.publisher() as pub:
            r = pub.post("/api/notifications", json={
                "recipients": many, "type": "t", "title": "t", "idempotencyKey": u})
            assert r.status_code == 201, r.text  # 1,500 - 1,000 = 500 left
            statuses = [pub.patch(f"/api/notifications/by-key/{u}",
                                  json={"title": f"update {i}"}).status_code
                        for i in range(10)]
            # the first is admitted (500 left) and owes 1,000; the rest wait it out
            assert statuses == [200] + [429] * 9, statuses  # before: ten 200s
            r = pub.post("/api/notifications", json={
                "recipients": ["x"], "type": "t", "title": "t"})
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 400, r.text
    finally:
        srv.stop()


def test_an_escalation_costs_its_potential_fan_out(tmp_path: Path) -> None:
    srv = start_server(tmp_path, extra=["--rate-publish", "1/s:100"])
    u = uuid.uuid4().hex[:8]
    try:
        with srv.publisher() as pub:
            assert pub.put(f"/api/escalation-policies/{u}", json={"steps": [
                {"targets": [f"s{s}-{t}" for t in range(20)], "waitSeconds": 600,
                 "skipIfNobodyActive": False} for s in range(3)], "repeat": 2}
            ).status_code == 201  # 3 steps x 20 targets x 3 rounds = 180
            r = pub.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                     "title": "x"})
            assert r.status_code == 201 and len(r.json()["ids"]) == 20, r.text
            r = pub.post("/api/notifications", json={
                "recipients": ["x"], "type": "t", "title": "t"})
            assert r.status_code == 429, r.text  # before: 201 (two requests of 100)
            assert int(r.headers["retry-after"]) >= 75  # 100 - 180 - 1 (less refill)
    finally:
        srv.stop()


def test_small_publishes_still_cost_one_token_each(tmp_path: Path) -> None:
    srv = start_server(tmp_path, extra=["--rate-publish", "1/m:3"])
    try:
        with srv.publisher() as pub:
            body = {"recipients": ["a"], "type": "t", "title": "t"}
            assert [pub.post("/api/notifications", json=body).status_code
                    for _ in range(4)] == [201, 201, 201, 429]
    finally:
        srv.stop()


def test_a_retry_with_the_same_idempotency_key_costs_only_its_admission(
        tmp_path: Path) -> None:
    """A retry of a publish that was stored (its reply lost: what idempotency keys are
    for) makes nothing, so it spends only the token it was admitted for. Before, the
    route charged the recipients again before finding the key: with 1/h:5, a publish
    of 3 and its retry left the bucket at -1 and the next publish got 429."""
    srv = start_server(tmp_path, extra=["--rate-publish", "1/h:5"])  # no refill here
    u = uuid.uuid4().hex[:8]
    body = {"recipients": [f"a-{u}", f"b-{u}", f"c-{u}"], "type": "t", "title": "t",
            "idempotencyKey": u}
    try:
        with srv.publisher() as pub:
            first = pub.post("/api/notifications", json=body)
            assert first.status_code == 201, first.text  # 5 - 3 = 2 left
            again = pub.post("/api/notifications", json=body)
            assert again.status_code == 201 and again.json() == first.json()  # 1 left
            r = pub.post("/api/notifications", json={
                "recipients": [f"d-{u}"], "type": "t", "title": "t"})
            assert r.status_code == 201, r.text  # before: 429 (the retry cost 3)
            r = pub.post("/api/notifications", json={
                "recipients": [f"e-{u}"], "type": "t", "title": "t"})
            assert r.status_code == 429, r.text  # and the budget is still counted
    finally:
        srv.stop()


def test_a_bulk_publish_costs_one_token_per_notification_it_stored(tmp_path: Path) -> None:
    srv = start_server(tmp_path, extra=["--rate-publish", "1/s:300"])
    u = uuid.uuid4().hex[:8]
    items = [{"recipients": [f"b{i}-{u}", f"c{i}-{u}"], "type": "t", "title": "t"}
             for i in range(200)]  # 400 notifications, and one invalid item (free)
    try:
        with srv.publisher() as pub:
            r = pub.post("/api/notifications/bulk",
                         json={"notifications": [*items, {"type": "t", "title": ""}]})
            assert r.status_code == 200, r.text
            assert [x["status"] for x in r.json()["results"]] == [201] * 200 + [400]
            # 300 - 400 = 100 owed: the next request waits it out (before: one token)
            r = pub.post("/api/notifications/bulk", json={"notifications": items[:1]})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 90, r.text
    finally:
        srv.stop()
