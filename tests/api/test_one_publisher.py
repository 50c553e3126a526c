"""The publisher rule (issue 21 #10), on a real ``tocsin serve`` with two API keys:
a deployment's keys are one publisher (rotation), so everything a key can do to
what it published, another key of the same deployment can too, the idempotency key
included (it was scoped per key, while groups, policies and incidents were not).

The rule is stated in docs/deploy.md ("Security") and README.md."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import ServerProcess, start_server

OLD_KEY = "old-publisher-key-0123456789"
NEW_KEY = "new-publisher-key-0123456789"


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path, extra=["--api-key", OLD_KEY, "--api-key", NEW_KEY])
    yield srv
    srv.stop()


def client(srv: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=10)


def test_a_retry_under_the_new_key_gets_the_same_idempotent_reply(
        rotating: ServerProcess) -> None:
    u = uuid.uuid4().hex[:8]
    body = {"recipients": [f"a{u}", f"b{u}"], "type": "deploy", "title": "v2 is out",
            "idempotencyKey": f"deploy-{u}"}
    with client(rotating, OLD_KEY) as old, client(rotating, NEW_KEY) as new:
        first = old.post("/api/notifications", json=body)
        assert first.status_code == 201, first.text
        again = new.post("/api/notifications", json=body)  # the key was rotated meanwhile
        assert again.status_code == 201 and again.json() == first.json()  # before: new ids
        other = new.post("/api/notifications", json={**body, "title": "another"})
        assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"
        with rotating.subscriber(f"a{u}") as a:  # one copy, not two
            assert len(a.get("/api/notifications").json()["items"]) == 1
        # update and retract by key through the other key (before: 404)
        r = new.patch(f"/api/notifications/by-key/deploy-{u}", json={"title": "v2.1 is out"})
        assert r.status_code == 200 and r.json()["ids"] == first.json()["ids"], r.text
        with rotating.subscriber(f"b{u}") as b:
            assert b.get("/api/notifications").json()["items"][0]["title"] == "v2.1 is out"
        r = old.delete(f"/api/notifications/by-key/deploy-{u}")
        assert r.status_code == 200 and r.json()["ids"] == first.json()["ids"], r.text


def test_policies_and_incidents_belong_to_the_deployment(rotating: ServerProcess) -> None:
    u = uuid.uuid4().hex[:8]
    with client(rotating, OLD_KEY) as old, client(rotating, NEW_KEY) as new:
        assert old.put(f"/api/escalation-policies/{u}", json={"steps": [
            {"targets": [f"a{u}"], "waitSeconds": 60}]}).status_code == 201
        assert new.get(f"/api/escalation-policies/{u}").status_code == 200
        inc = new.post("/api/notifications", json={"escalation": u, "type": "alert",
                                                   "title": "x"}).json()["incident"]
        assert old.get(f"/api/incidents/{inc}").json()["state"] == "open"
