"""Event webhooks against real ``tocsin serve`` processes on SQLite and PostgreSQL,
posting to a local receiver that verifies every signature with ``standardwebhooks``:
a read produces one signed ``notification.read``; a 500 then a 200 delivers the same
``webhook-id`` twice and loses nothing; failing attempts pause a subscription, a PUT
resumes it; a delivery failing past the give-up time is listed; a private address is
refused without ``--webhook-allow-private``; bad input gets a 4xx; a push service's
410 produces one ``push.gone``; an event already written as a timer survives a
SIGKILL of the node and arrives after its restart with the same ``webhook-id``; a
node that dies the instant a read commits delivers its event after the restart (the
outbox: the event's timer is in the read's transaction)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channels.pushsvc import PushServiceThread
from tests.support.clock import FAST, Clock
from tests.support.listener import loopback_names
from tests.support.server import JWT_SECRET, ServerProcess, served, start_server
from tests.support.services import database_url, drop_pg_schema
from tests.webhooks.receiver import Receiver
from tocsin.channels.email.links import mint_unsubscribe
from tocsin.outbound.signing import new_secret

SECRET = new_secret()


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[ServerProcess]:
    tmp_path: Path = tmp_path_factory.mktemp("evwh")
    with served(request.param, tmp_path, extra=[
            *FAST, "--webhook-allow-private", "--event-webhook-pause-after", "3",
            "--event-webhook-give-up", "4s"]) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SECRET) as r:
        yield r


def uid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:8]


def subscribe(srv: ServerProcess, name: str, url: str, events: list[str]) -> httpx.Response:
    with srv.publisher() as pub:
        return pub.put(f"/api/event-webhooks/{name}",
                       json={"url": url, "events": events, "secret": SECRET})


def publish(srv: ServerProcess, user: str) -> str:
    with srv.publisher() as pub:
        r = pub.post("/api/notifications", json={"recipients": [user], "type": "t",
                                                 "title": "Hello"})
        assert r.status_code == 201, r.text
        nid: str = r.json()["ids"][user]
        return nid


def read(srv: ServerProcess, user: str, nid: str) -> None:
    with srv.subscriber(user) as sub:
        r = sub.patch(f"/api/notifications/{nid}", json={"read": True})
        assert r.status_code == 200, r.text


def wait_for(check: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out")


def of_user(receiver: Receiver, user: str) -> list[dict[str, Any]]:
    return [e for e in receiver.events() if e["data"].get("user") == user]


def test_a_read_produces_one_signed_notification_read(srv: ServerProcess,
                                                      receiver: Receiver) -> None:
    name, user = uid("h"), uid("u")
    r = subscribe(srv, name, receiver.url, ["notification.read", "notification.dismissed"])
    assert r.status_code == 201, r.text
    assert r.json()["events"] == ["notification.read", "notification.dismissed"]
    assert "secret" not in r.json() or r.json()["secret"] is None
    nid = publish(srv, user)
    read(srv, user, nid)
    read(srv, user, nid)  # already read: changes nothing, reports nothing
    got = wait_for(lambda: of_user(receiver, user))
    time.sleep(1.0)  # any duplicate would arrive by now (timer poll 100 ms)
    got = of_user(receiver, user)
    assert len(got) == 1, got
    event = got[0]
    assert event["verified"], "the signature must verify with standardwebhooks"
    assert event["type"] == "notification.read"
    assert event["data"]["notification"] == nid and event["data"]["user"] == user
    assert event["data"]["id"] == event["webhook-id"]
    assert event["timestamp"].endswith("Z")
    with srv.publisher() as pub:
        assert pub.delete(f"/api/event-webhooks/{name}").status_code == 204


def test_500_then_200_same_webhook_id_nothing_lost(srv: ServerProcess,
                                                   receiver: Receiver) -> None:
    name, user = uid("h"), uid("u")
    assert subscribe(srv, name, receiver.url, ["notification.read"]).status_code == 201
    receiver.answer(500, headers={"retry-after": "0"})
    nids = [publish(srv, user), publish(srv, user)]
    read(srv, user, nids[0])
    wait_for(lambda: len([e for e in of_user(receiver, user) if e["status"] == 200]) == 1)
    read(srv, user, nids[1])
    wait_for(lambda: len([e for e in of_user(receiver, user) if e["status"] == 200]) == 2)
    got = of_user(receiver, user)
    assert all(e["verified"] for e in got)
    first = [e for e in got if e["data"]["notification"] == nids[0]]
    assert [e["status"] for e in first] == [500, 200]
    assert first[0]["webhook-id"] == first[1]["webhook-id"]
    assert {e["data"]["notification"] for e in got if e["status"] == 200} == set(nids)
    with srv.publisher() as pub:
        sub = pub.get(f"/api/event-webhooks/{name}").json()
        assert sub["paused"] is False and sub["consecutiveFailures"] == 0
        pub.delete(f"/api/event-webhooks/{name}")


def test_paused_after_n_failures_resumed_by_put(srv: ServerProcess,
                                                receiver: Receiver) -> None:
    name, user = uid("h"), uid("u")
    assert subscribe(srv, name, receiver.url, ["notification.read"]).status_code == 201
    receiver.answer(503, 503, 503, headers={"retry-after": "0"})
    read(srv, user, publish(srv, user))
    with srv.publisher() as pub:
        sub = wait_for(lambda: (s := pub.get(f"/api/event-webhooks/{name}").json())["paused"]
                       and s)
        assert sub["consecutiveFailures"] == 3 and sub["lastError"] == "HTTP 503"
        assert len(of_user(receiver, user)) == 3  # nothing sent while paused
        # still paused: a new event is not queued for it
        read(srv, user, publish(srv, user))
        time.sleep(1.0)
        assert len(of_user(receiver, user)) == 3
        # the first event was held, then given up past --event-webhook-give-up (4 s)
        failures = wait_for(lambda: pub.get(f"/api/event-webhooks/{name}/failures")
                            .json()["failures"])
        assert failures[0]["type"] == "notification.read"
        assert failures[0]["id"] == of_user(receiver, user)[0]["webhook-id"]
        metrics = pub.get("/metrics").text
        assert 'tocsin_event_webhooks_total{outcome="given_up"}' in metrics
        # a PUT resumes it; the next read is delivered
        r = subscribe(srv, name, receiver.url, ["notification.read"])
        assert r.status_code == 200 and r.json()["paused"] is False, r.text
        nid = publish(srv, user)
        read(srv, user, nid)
        wait_for(lambda: [e for e in of_user(receiver, user)
                          if e["data"]["notification"] == nid and e["status"] == 200])
        pub.delete(f"/api/event-webhooks/{name}")


def test_bad_input_is_a_4xx(srv: ServerProcess) -> None:
    with srv.publisher() as pub:
        for body in ({"url": "https://example.com/h", "events": ["nope"]},
                     {"url": "https://example.com/h", "events": []},
                     {"url": "ftp://example.com/h", "events": ["notification.read"]},
                     {"url": "https://example.com/h", "events": ["notification.read"],
                      "secret": "plain"},
                     {"url": "https://example.com/h", "events": ["notification.read"],
                      "extra": 1},
                     [1, 2]):
            r = pub.put("/api/event-webhooks/x", json=body)
            assert r.status_code == 400, (body, r.text)
            assert "error" in r.json()
        assert pub.get("/api/event-webhooks/none").status_code == 404
        assert pub.get("/api/event-webhooks/none/failures").status_code == 404
        r = pub.put("/api/event-webhooks/gen", json={"url": "https://example.com/h",
                                                     "events": ["push.gone"]})
        assert r.status_code == 201 and r.json()["secret"].startswith("whsec_"), r.text
        assert "secret" not in pub.get("/api/event-webhooks/gen").json()
        pub.delete("/api/event-webhooks/gen")
    with srv.subscriber("someone") as sub:
        assert sub.get("/api/event-webhooks/gen").status_code in (401, 403)


def test_private_address_refused_without_the_flag(tmp_path: Path) -> None:
    with served("sqlite", tmp_path, extra=FAST) as srv, Receiver(SECRET) as receiver:
        r = subscribe(srv, "local", receiver.url, ["notification.read"])
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == "url"
        for url in ("http://10.0.0.7/h", "https://192.168.1.2/h", "https://[::1]/h",
                    "https://169.254.169.254/latest"):
            assert subscribe(srv, "local", url, ["notification.read"]).status_code == 400


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_each_kind_is_reported_from_where_it_happens(backend: str, tmp_path: Path) -> None:
    """unread, dismissed (kernel), escalated, acked, exhausted (escalation) and
    email.unsubscribed (email channel), on a server whose timers read a fake clock:
    the events carry the node's time, the signatures the wall clock's."""
    kinds = ["notification.unread", "notification.dismissed", "notification.acked",
             "incident.escalated", "incident.exhausted", "email.unsubscribed"]
    clock = Clock(tmp_path / "clock")
    with served(backend, tmp_path, extra=[*FAST, *clock.flags, "--webhook-allow-private"]
                ) as srv, Receiver(SECRET) as receiver:
        assert subscribe(srv, "all", receiver.url, kinds).status_code == 201
        user = uid("u")
        nid = publish(srv, user)
        read(srv, user, nid)  # not subscribed: nothing
        with srv.subscriber(user) as sub:
            assert sub.patch(f"/api/notifications/{nid}", json={"read": False}
                             ).status_code == 200
            assert sub.delete(f"/api/notifications/{nid}").status_code == 200
        a, b = uid("a"), uid("b")
        with srv.publisher() as pub:
            steps = [{"targets": [t], "waitSeconds": 30, "skipIfNobodyActive": False}
                     for t in (a, b)]
            assert pub.put("/api/escalation-policies/p1", json={"steps": steps, "repeat": 0}
                           ).status_code == 201
            acked = pub.post("/api/notifications", json={
                "escalation": "p1", "type": "alert", "title": "Disk full"}).json()
            clock.advance(30)  # step 2: escalated to b
            wait_for(lambda: [e for e in receiver.events()
                              if e["type"] == "incident.escalated"])
            with srv.subscriber(b) as sub:
                bnid = sub.get("/api/notifications").json()["items"][0]["id"]
                assert sub.post(f"/api/notifications/{bnid}/ack").status_code == 200
            exhausted = pub.post("/api/notifications", json={
                "escalation": "p1", "type": "alert", "title": "CPU hot"}).json()
            clock.advance(30)
            wait_for(lambda: [e for e in receiver.events()
                              if e["data"].get("incident") == exhausted["incident"]])
            clock.advance(30)
            wait_for(lambda: [e for e in receiver.events()
                              if e["type"] == "incident.exhausted"])
        token = mint_unsubscribe(JWT_SECRET, user, ["t"])
        assert httpx.get(f"{srv.url}/api/email/unsubscribe", params={"token": token}
                         ).status_code == 200
        got = wait_for(lambda: (ev := receiver.events()) and len(
            {e["type"] for e in ev}) == len(kinds) and ev)
        assert all(e["verified"] for e in got), got
        by_type: dict[str, list[dict[str, Any]]] = {}
        for e in got:
            by_type.setdefault(e["type"], []).append(e["data"])
        assert by_type["notification.unread"] == [
            {"id": by_type["notification.unread"][0]["id"], "user": user,
             "notification": nid, "by": user}]
        assert [d["notification"] for d in by_type["notification.dismissed"]] == [nid]
        escalated = [d for d in by_type["incident.escalated"]
                     if d["incident"] == acked["incident"]]
        assert [(d["user"], d["notification"], d["step"]) for d in escalated] == [
            (b, bnid, 2)]
        assert [(d["user"], d["notification"], d["incident"])
                for d in by_type["notification.acked"]] == [(b, bnid, acked["incident"])]
        assert [d["incident"] for d in by_type["incident.exhausted"]] == [
            exhausted["incident"]]
        assert [(d["user"], d["types"]) for d in by_type["email.unsubscribed"]] == [
            (user, ["t"])]
        assert len({e["webhook-id"] for e in got}) == len(got)  # one delivery each


def test_a_name_resolving_to_loopback_is_refused_at_send_time(tmp_path: Path) -> None:
    names = loopback_names()
    if not names:
        pytest.skip("no /etc/hosts name resolving to loopback only")
    with served("sqlite", tmp_path, extra=[*FAST, "--event-webhook-give-up", "1s"]
                ) as srv, Receiver(SECRET) as receiver:
        # a name: allowed at registration (no DNS then), refused when connecting
        url = f"https://{names[0]}:{receiver.port}/hook"
        assert subscribe(srv, "sneaky", url, ["notification.read"]).status_code == 201
        user = uid("u")
        read(srv, user, publish(srv, user))
        with srv.publisher() as pub:
            failure = wait_for(lambda: pub.get("/api/event-webhooks/sneaky/failures")
                               .json()["failures"])
            assert failure[0]["reason"].startswith("refused"), failure
            assert "loopback" in failure[0]["reason"]
        assert receiver.events() == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_410_from_the_push_service_produces_one_signed_push_gone(
        backend: str, tmp_path: Path) -> None:
    """End to end: a real push subscription on the local push service, which answers
    410; the push channel deletes it and reports ``push.gone``: one signed event."""
    push = PushServiceThread().start()
    try:
        with served(backend, tmp_path, extra=[*FAST, "--webhook-allow-private",
                                              "--push-allow-insecure"]
                    ) as srv, Receiver(SECRET) as receiver:
            push.service.expected_key = httpx.get(
                srv.url + "/api/push/vapid-public-key").json()["publicKey"]
            assert subscribe(srv, "gone", receiver.url, ["push.gone"]).status_code == 201
            user = uid("u")
            dev = push.device(user)
            with srv.subscriber(user) as sub:
                r = sub.post("/api/push-subscriptions", json=dev)
                assert r.status_code == 201, r.text
            push.service.set_response(dev["endpoint"], 410)
            with srv.publisher() as pub:
                r = pub.post("/api/notifications", json={
                    "recipients": [user], "type": "t", "title": "Hello", "priority": "high"})
                assert r.status_code == 201, r.text
                nid = r.json()["ids"][user]
            push.wait(dev["endpoint"], status=410)
            got = wait_for(lambda: of_user(receiver, user))
            time.sleep(1.0)  # any duplicate would arrive by now (timer poll 100 ms)
            got = of_user(receiver, user)
            assert len(got) == 1, got
            event = got[0]
            assert event["verified"] and event["type"] == "push.gone", event
            assert event["data"]["notification"] == nid and event["data"]["user"] == user
            assert event["data"]["id"] == event["webhook-id"]
    finally:
        push.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_event_written_as_a_timer_survives_a_kill(backend: str, tmp_path: Path) -> None:
    """At least once across a crash: the read's event is queued and its timer written
    (the receiver got the first attempt and answered 500, Retry-After 60 s on the
    node's fake clock); the node is killed (SIGKILL); the restarted node delivers it,
    same ``webhook-id``, to the receiver now answering 200."""
    clock = Clock(tmp_path / "clock")
    clock.set(1_800_000_000_000)
    url, schema = database_url(backend, tmp_path)
    flags = [*FAST, *clock.flags, "--webhook-allow-private"]
    try:
        with Receiver(SECRET) as receiver:
            srv = start_server(tmp_path, database=url, extra=flags)
            try:
                assert subscribe(srv, "crash", receiver.url, ["notification.read"]
                                 ).status_code == 201
                receiver.answer(500, headers={"retry-after": "60"})
                user = uid("u")
                nid = publish(srv, user)
                read(srv, user, nid)
                (failed,) = wait_for(lambda: of_user(receiver, user))
                assert failed["status"] == 500
                time.sleep(1.0)  # the attempt's release (due in 60 s) is written
            finally:
                srv.kill()  # SIGKILL: nothing runs on the way out
            srv = start_server(tmp_path, database=url, extra=flags)
            try:
                time.sleep(1.0)
                assert len(of_user(receiver, user)) == 1  # Retry-After is kept
                clock.advance(60)
                wait_for(lambda: len(of_user(receiver, user)) == 2)
                time.sleep(1.0)
                first, second = of_user(receiver, user)
                assert second["status"] == 200 and second["verified"]
                assert second["webhook-id"] == first["webhook-id"]
                assert second["data"]["notification"] == nid
                assert len(of_user(receiver, user)) == 2
            finally:
                srv.stop()
    finally:
        if schema:
            asyncio.run(drop_pg_schema(schema))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_node_dying_the_instant_a_read_commits_delivers_after_its_restart(
        backend: str, tmp_path: Path) -> None:
    """The outbox: the node ends (``os._exit``, test-only ``TOCSIN_TEST_EXIT_AFTER_READ``)
    right after the read's transaction commits, before its fan-out or observation can
    run; nothing of the node survives but the database. The restarted node delivers
    the event, signed, exactly once: its timer was written in the read's transaction
    (before the outbox, the event waited in memory and was lost)."""
    url, schema = database_url(backend, tmp_path)
    flags = [*FAST, "--webhook-allow-private"]
    try:
        with Receiver(SECRET) as receiver:
            srv = start_server(tmp_path, database=url, extra=flags,
                               env={"TOCSIN_TEST_EXIT_AFTER_READ": "1"})
            try:
                assert subscribe(srv, "dies", receiver.url, ["notification.read"]
                                 ).status_code == 201
                user = uid("u")
                nid = publish(srv, user)
                with srv.subscriber(user) as sub, pytest.raises(httpx.TransportError):
                    sub.patch(f"/api/notifications/{nid}", json={"read": True})
                assert srv.proc.wait(10) == 70, srv.log()  # it died there, not later
            finally:
                srv.kill()
            srv = start_server(tmp_path, database=url, extra=flags)
            try:
                wait_for(lambda: of_user(receiver, user))
                time.sleep(1.5)  # a duplicate would arrive by now (timer poll 100 ms)
                (event,) = of_user(receiver, user)
                assert event["verified"] and event["status"] == 200
                assert event["type"] == "notification.read"
                assert event["data"]["notification"] == nid and event["data"]["by"] == user
                assert event["data"]["id"] == event["webhook-id"]
                with srv.subscriber(user) as sub:  # and the read itself was kept
                    assert sub.get(f"/api/notifications/{nid}").json()["read"] is True
            finally:
                srv.stop()
    finally:
        if schema:
            asyncio.run(drop_pg_schema(schema))
