"""The delivery trail against real ``tocsin serve`` processes on SQLite and PostgreSQL
(docs/trail.md): stored, the attention decision, the first live write over SSE and the
read; a quiet-hours recipient; a push not sent because a tab was visible (the local
push service); an email not sent because the notification was read first (the local
SMTP sink); the trail by idempotency key; who may read it; retention."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.pushsvc import PushServiceThread
from tests.channels.test_push import open_tab, presence_of
from tests.support.server import ServerProcess, start_server
from tests.support.services import database_url, drop_pg_schema
from tests.support.sse import StreamReader
from tests.support.wait import wait_until
from tocsin.devtools.smtp_sink import SmtpSink

EXTRA = ["--push-allow-insecure", "--presence-interval", "500ms", "--timer-poll", "100ms",
         "--heartbeat", "1s", "--rate-reads", "off"]


@dataclass
class Env:
    srv: ServerProcess
    push: PushServiceThread
    sink: SmtpSink

    def publish(self, users: list[str], **kw: Any) -> dict[str, str]:
        with self.srv.publisher() as pub:
            r = pub.post("/api/notifications", json={
                "recipients": users, "type": kw.pop("type", "comment"), "title": "t", **kw})
        assert r.status_code == 201, r.text
        ids: dict[str, str] = r.json()["ids"]
        return ids

    def trail(self, nid: str) -> dict[str, Any]:
        with self.srv.publisher() as pub:
            r = pub.get(f"/api/notifications/{nid}/trail")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def steps(self, nid: str) -> list[dict[str, Any]]:
        (recipient,) = self.trail(nid)["recipients"]
        steps: list[dict[str, Any]] = recipient["steps"]
        return steps

    def summaries(self, nid: str) -> list[str]:
        return [s["summary"] for s in self.steps(nid)]

    def prefs(self, user: str, prefs: dict[str, Any]) -> None:
        with self.srv.subscriber(user) as sub:
            r = sub.put("/api/preferences", json=prefs)
        assert r.status_code == 200, r.text


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("trail")
    url, schema = database_url(request.param, tmp)
    push = PushServiceThread().start()
    sink = SmtpSink().start()
    srv = start_server(tmp, database=url, extra=[
        *EXTRA, "--smtp-url", sink.url, "--smtp-from", "Tocsin <tocsin@example.com>"])
    try:
        push.service.expected_key = httpx.get(
            srv.url + "/api/push/vapid-public-key").json()["publicKey"]
        time.sleep(1)  # presence is known 1.5 intervals after the start
        yield Env(srv, push, sink)
    finally:
        srv.stop()
        push.stop()
        sink.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))


def uid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:8]


async def _stream_until_live(env: Env, user: str, nid_box: list[str]) -> None:
    async with StreamReader(env.srv.url + "/api/notifications/stream",
                            env.srv.token(user)) as reader:
        await asyncio.wait_for(reader.connected.wait(), 10)
        nid_box.append(env.publish([user])[user])
        await reader.wait_for(1, pred=lambda e: e.event == "notification")


def test_stored_decision_live_write_and_read(env: Env) -> None:
    user = uid("a")
    box: list[str] = []
    asyncio.run(_stream_until_live(env, user, box))
    (nid,) = box
    with env.srv.subscriber(user) as sub:
        assert sub.patch(f"/api/notifications/{nid}", json={"read": True}).status_code == 200
    wait_until(lambda: "written live over sse" in env.summaries(nid), 10)
    body = env.trail(nid)
    assert body["notification"] == nid and body["type"] == "comment"
    (recipient,) = body["recipients"]
    assert recipient["user"] == user
    steps = recipient["steps"]
    kinds = [s["kind"] for s in steps]
    assert kinds[:2] == ["stored", "decision"] and "stream.live" in kinds
    assert kinds.index("stream.live") < kinds.index("notification.read")
    assert steps[1]["detail"] == {"decision": "delivered"}
    read = next(s for s in steps if s["kind"] == "notification.read")
    assert read["by"] == user and read["summary"] == "read"
    assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)
    for s in steps:
        assert set(s) == {"at", "kind", "by", "detail", "summary"}


def test_a_quiet_hours_recipient_is_silent(env: Env) -> None:
    quiet, loud = uid("q"), uid("l")
    env.prefs(quiet, {"quietHours": {"timezone": "UTC", "start": "00:00", "end": "23:59"}})
    ids = env.publish([quiet, loud], priority="medium")
    decision = next(s for s in env.steps(ids[quiet]) if s["kind"] == "decision")
    assert decision["detail"] == {"decision": "silent", "reason": "quiet_hours"}
    assert decision["summary"] == "silent: quiet hours"
    assert "delivered" in env.summaries(ids[loud])


def test_a_visible_tab_suppresses_the_push(env: Env) -> None:
    user = uid("p")
    dev = env.push.device(user)
    with env.srv.subscriber(user) as sub:
        assert sub.post("/api/push-subscriptions", json=dev).status_code == 201
    with open_tab(env.srv, user):
        with env.srv.subscriber(user) as sub:
            assert sub.put("/api/presence", json={"state": "active"}).status_code == 200
        wait_until(lambda: presence_of(env.srv, user) == "active", 5)
        nid = env.publish([user], priority="high")[user]
        wait_until(lambda: "push suppressed: tab visible" in env.summaries(nid), 10)
    assert env.push.service.messages(dev["endpoint"]) == []
    # an idle tab: queued for the device, then sent with the push service's status
    with env.srv.subscriber(user) as sub:
        assert sub.put("/api/presence", json={"state": "idle"}).status_code == 200
    nid = env.publish([user], priority="high")[user]
    env.push.wait(dev["endpoint"])
    wait_until(lambda: any(s["kind"] == "push.sent" for s in env.steps(nid)), 10)
    sent = next(s for s in env.steps(nid) if s["kind"] == "push.sent")
    assert sent["detail"]["status"] == 201 and sent["detail"]["device"]
    assert "push queued" in env.summaries(nid)


def test_an_email_read_first_is_suppressed(env: Env) -> None:
    user = uid("e")
    with env.srv.publisher() as pub:
        assert pub.put(f"/api/users/{user}",
                       json={"email": f"{user}@example.com"}).status_code == 200
    env.prefs(user, {"types": {"digest": {"channels": ["inbox", "email"], "emailAfter": 2}}})
    nid = env.publish([user], type="digest")[user]
    with env.srv.subscriber(user) as sub:
        assert sub.patch(f"/api/notifications/{nid}", json={"read": True}).status_code == 200
    wait_until(lambda: "email suppressed: read" in env.summaries(nid), 15)
    assert [m for m in env.sink.messages if f"{user}@example.com" in m["to"]] == []


def test_by_idempotency_key_with_a_skipped_recipient(env: Env) -> None:
    a, b, off = uid("k"), uid("k"), uid("s")
    env.prefs(off, {"types": {"news": {"channels": []}}})
    key = uid("key")
    with env.srv.publisher() as pub:
        r = pub.post("/api/notifications", json={
            "recipients": [a, b, off], "type": "news", "title": "t", "idempotencyKey": key})
        assert r.status_code == 201, r.text
        ids = r.json()["ids"]
        r = pub.get("/api/trail", params={"idempotencyKey": key})
        assert r.status_code == 200, r.text
        body = r.json()
        assert pub.get("/api/trail", params={"idempotencyKey": uid("none")}
                       ).status_code == 404
        assert pub.get("/api/trail").status_code == 400
        by_user = pub.get("/api/trail", params={"user": a, "since": 0}).json()
    got = {t["recipients"][0]["user"]: t for t in body["notifications"]}
    assert set(got) == {a, b, off}
    assert got[a]["notification"] == ids[a] and got[b]["notification"] == ids[b]
    assert got[off]["notification"] is None
    (step,) = got[off]["recipients"][0]["steps"]
    assert step["summary"] == "skipped: preferences"
    assert [t["notification"] for t in by_user["notifications"]] == [ids[a]]


def test_only_a_publisher_reads_the_trail(env: Env) -> None:
    user = uid("x")
    nid = env.publish([user])[user]
    with env.srv.subscriber(user) as sub:
        assert sub.get(f"/api/notifications/{nid}/trail").status_code in (401, 403)
        assert sub.get("/api/trail", params={"user": user}).status_code in (401, 403)
    assert httpx.get(f"{env.srv.url}/api/notifications/{nid}/trail").status_code == 401
    with env.srv.publisher() as pub:
        assert pub.get(f"/api/notifications/{uid('nope')}/trail").status_code == 404


def test_retention_prunes_the_trail(tmp_path: Path) -> None:
    srv = start_server(tmp_path, extra=["--retention", "2s", "--heartbeat", "1s"])
    try:
        env = Env(srv, None, None)  # type: ignore[arg-type]
        user = uid("r")
        box: list[str] = []
        asyncio.run(_stream_until_live(env, user, box))
        (nid,) = box
        wait_until(lambda: "stream.live" in [s["kind"] for s in env.steps(nid)], 10)
        # the recorded steps go with the retention; what the row says stays with the row
        wait_until(lambda: "stream.live" not in [s["kind"] for s in env.steps(nid)], 15)
        assert [s["kind"] for s in env.steps(nid)] == ["stored", "decision"]
    finally:
        srv.stop()


def _cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tocsin", "trail", *args, "--server", env.srv.url],
        env={**os.environ, "TOCSIN_API_KEY": env.srv.api_key, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=60)


def test_the_cli_prints_json_when_piped_and_a_table_when_asked(env: Env) -> None:
    user = uid("c")
    key = uid("ck")
    with env.srv.publisher() as pub:
        r = pub.post("/api/notifications", json={
            "recipients": [user], "type": "comment", "title": "t", "idempotencyKey": key})
    nid = r.json()["ids"][user]
    by_id = _cli(env, nid)
    assert by_id.returncode == 0, by_id.stderr
    (trail,) = json.loads(by_id.stdout)["notifications"]
    assert trail["notification"] == nid and trail["recipients"][0]["user"] == user
    by_key = _cli(env, key)
    assert by_key.returncode == 0, by_key.stderr
    assert [t["notification"] for t in json.loads(by_key.stdout)["notifications"]] == [nid]
    pretty = _cli(env, nid, "--pretty")
    assert pretty.returncode == 0, pretty.stderr
    assert nid in pretty.stdout and user in pretty.stdout and "delivered" in pretty.stdout
    missing = _cli(env, uid("nokey"))
    assert missing.returncode == 1 and "404" in missing.stderr + missing.stdout


def test_an_escalation_step_and_its_skipped_wait(env: Env) -> None:
    name, target = uid("pol"), uid("oncall")
    with env.srv.publisher() as pub:
        assert pub.put(f"/api/escalation-policies/{name}", json={"steps": [
            {"targets": [target], "waitSeconds": 600, "skipIfNobodyActive": True},
            {"targets": [uid("next")], "waitSeconds": 600}]}).status_code == 201
        r = pub.post("/api/notifications", json={"escalation": name, "type": "alert",
                                                 "title": "DB down", "priority": "urgent"})
        assert r.status_code == 201, r.text
    incident, nid = r.json()["incident"], r.json()["ids"][target]
    wait_until(lambda: "escalation.skipped" in [s["kind"] for s in env.steps(nid)], 10)
    steps = {s["kind"]: s for s in env.steps(nid)}
    assert steps["escalation.step"]["detail"] == {"incident": incident, "round": 1, "step": 1}
    assert steps["escalation.skipped"]["summary"] == "escalation step 1 skipped: nobody active"


async def _replay(env: Env, user: str) -> None:
    async with StreamReader(env.srv.url + "/api/notifications/stream", env.srv.token(user),
                            last_event_id="0") as reader:
        await reader.wait_for(1, pred=lambda e: e.event == "notification")


def test_a_copy_read_from_the_store_is_caught_up(env: Env) -> None:
    user = uid("o")
    nid = env.publish([user])[user]  # nobody connected: no live write
    asyncio.run(_replay(env, user))
    wait_until(lambda: "caught up over sse" in env.summaries(nid), 10)
    assert "stream.live" not in [s["kind"] for s in env.steps(nid)]


def test_only_the_first_write_counts(env: Env) -> None:
    """A copy written live, then read again from the store (a reconnect from the start,
    in a later flush) and by a second tab: one step, the live write."""
    user = uid("f")
    box: list[str] = []
    asyncio.run(_stream_until_live(env, user, box))
    (nid,) = box
    wait_until(lambda: "written live over sse" in env.summaries(nid), 10)
    asyncio.run(_replay(env, user))
    asyncio.run(_replay(env, user))
    env.publish([uid("other")])  # a group commit for what the replays queued to ride
    time.sleep(1.5)  # three flushes: whatever the replays recorded is written by now
    kinds = [s["kind"] for s in env.steps(nid)]
    assert [k for k in kinds if k.startswith("stream.")] == ["stream.live"]
