"""The chat and webhook channel against real ``tocsin serve`` processes on SQLite and
PostgreSQL, posting to a local receiver on loopback that verifies every signature
with the ``standardwebhooks`` package; the timers' clock is frozen in a file
(``--test-clock-file``). A Slack-format message for a chosen type (escaped), quiet
hours delaying it, a 500 then 200 (same ``webhook-id``, nothing lost), a server
killed between the publish and the send, a receiver that keeps failing given up after
``--webhook-give-up`` (counted, and listed in the console's failures), and private
addresses refused without ``--webhook-allow-private`` (at registration, and at send
time)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.channels.webhook.receiver import Receiver, receiver
from tests.support.clock import FAST, Clocked, clocked, ms
from tests.support.ids import uid
from tests.support.server import ServerProcess, free_port, start_server
from tests.support.wait import wait_until

HOOK = ["inbox", "interrupt", "webhook"]


@dataclass
class Env(Clocked):
    rec: Receiver


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Env]:
    # the server is stopped first: a test may have restarted it (env.srv is the new one)
    with receiver() as rec, clocked(Env, request.param, tmp_path_factory.mktemp("webhook"),
                                    ["--webhook-allow-private", "--console"], rec=rec) as env:
        yield env


def user_with(srv: ServerProcess, rec: Receiver, user: str, fmt: str,
              prefs: dict[str, Any] | None) -> str:
    path = f"/{user}"
    with srv.publisher() as pub:
        r = pub.put(f"/api/users/{user}", json={
            "webhook": {"url": rec.url + path, "format": fmt, "secret": rec.secret}})
        assert r.status_code == 200, r.text
        assert r.json() == {"user": user, "webhook": {"url": rec.url + path, "format": fmt,
                                                      "signed": True}}
    if prefs is not None:
        with srv.subscriber(user) as sub:
            r = sub.put("/api/preferences", json=prefs)
            assert r.status_code == 200, r.text
    return path


def publish(srv: ServerProcess, users: list[str], type: str, **kw: Any) -> dict[str, str]:
    with srv.publisher() as pub:
        r = pub.post("/api/notifications", json={"recipients": users, "type": type,
                                                 "title": kw.pop("title", "Hello"), **kw})
        assert r.status_code == 201, r.text
        ids: dict[str, str] = r.json()["ids"]
        return ids


def quiet_moment() -> None:
    """Long enough for several timer polls (100 ms) to have run."""
    time.sleep(1.0)


def test_a_slack_message_arrives_signed_for_the_chosen_type_only(env: Env) -> None:
    env.clock.set(ms(2026, 3, 2, 10, 0))
    chosen, other = uid("deploy"), uid("chatter")
    u = uid("s")
    path = user_with(env.srv, env.rec, u, "slack", {"types": {chosen: {"channels": HOOK}}})
    publish(env.srv, [u], other, title="not for the room")
    ids = publish(env.srv, [u], chosen, title="Deploy <!channel> & *done*",
                  body="build <https://evil.example|click>", priority="high",
                  url="https://ci.example.com/b/1?x=1&y=2")
    (got,) = wait_until(lambda: env.rec.on(path))
    assert got.verified, got.headers  # standardwebhooks accepted the signature
    assert got.id == f"webhook.send:{ids[u]}"
    msg = got.json
    assert set(msg) == {"text", "blocks"}
    # Slack's control characters escaped: no mention, no injected link
    assert "<!channel>" not in got.body.decode() and "<https://evil" not in got.body.decode()
    section = msg["blocks"][0]["text"]["text"]
    assert "Deploy &lt;!channel&gt; &amp; *done*" in section
    assert "build &lt;https://evil.example|click&gt;" in section
    assert msg["blocks"][1]["elements"][0]["text"] == "priority: high"
    assert msg["blocks"][2]["text"]["text"] == "<https://ci.example.com/b/1?x=1&amp;y=2|Open>"
    assert msg["text"].startswith("[high] Deploy &lt;!channel&gt;")
    quiet_moment()
    assert len(env.rec.on(path)) == 1  # the other type never went to the room
    metrics = httpx.get(env.srv.url + "/metrics").text
    assert re.search(r'tocsin_webhook_sent_total\{result="sent"\} [1-9]', metrics)


def test_quiet_hours_delay_it_to_their_end(env: Env) -> None:
    kind, u = uid("kq"), uid("q")
    path = user_with(env.srv, env.rec, u, "generic", {
        "types": {kind: {"channels": HOOK}},
        "quietHours": {"timezone": "UTC", "start": "22:00", "end": "07:00"},
        "urgentBypassesQuiet": True})
    env.clock.set(ms(2026, 3, 5, 23, 0))
    nid = publish(env.srv, [u], kind, title="at night")[u]
    urgent = publish(env.srv, [u], kind, title="on fire", priority="urgent")[u]
    # urgent bypasses quiet hours: sent at once
    (first,) = wait_until(lambda: env.rec.on(path))
    assert first.json["notification"]["id"] == urgent and first.json["user"] == u
    env.clock.set(ms(2026, 3, 6, 6, 59))
    quiet_moment()
    assert len(env.rec.on(path)) == 1
    env.clock.set(ms(2026, 3, 6, 7, 0))
    wait_until(lambda: len(env.rec.on(path)) == 2)
    late = env.rec.on(path)[1]
    assert late.verified and late.json["notification"]["id"] == nid
    assert late.json["notification"]["title"] == "at night"


def test_a_500_then_200_gets_the_same_webhook_id_twice_and_nothing_lost(env: Env) -> None:
    env.clock.set(ms(2026, 3, 9, 12, 0))
    kind, u = uid("kr"), uid("r")
    path = user_with(env.srv, env.rec, u, "discord", {"types": {kind: {"channels": HOOK}}})
    env.rec.answers.append((500, {"retry-after": "30"}))
    nid = publish(env.srv, [u], kind, title="@everyone *retry* me")[u]
    (first,) = wait_until(lambda: env.rec.on(path))
    env.clock.advance(29)  # Retry-After: 30 s is honoured (the node's clock)
    quiet_moment()
    assert len(env.rec.on(path)) == 1
    env.clock.advance(1)
    wait_until(lambda: len(env.rec.on(path)) == 2)
    quiet_moment()
    first, second = env.rec.on(path)
    assert first.id == second.id == f"webhook.send:{nid}"
    assert first.body == second.body and second.verified
    msg = second.json
    assert set(msg) == {"content", "embeds", "allowed_mentions"}
    assert "@everyone" not in msg["content"] and "\\*retry\\*" in msg["content"]
    assert msg["allowed_mentions"] == {"parse": []}


def counted(srv: ServerProcess, result: str) -> float:
    line = f'tocsin_webhook_sent_total{{result="{result}"}} '
    m = re.search("^" + re.escape(line) + r"(\S+)$", httpx.get(srv.url + "/metrics").text,
                  re.M)
    return float(m.group(1)) if m else 0.0


def test_a_receiver_that_keeps_failing_is_given_up_and_listed(env: Env) -> None:
    """Retried while ``--webhook-give-up`` (1 day, judged by the node's clock) has not
    passed since the first attempt, then given up: counted as ``gave_up`` in /metrics,
    listed in ``GET /api/console/failures`` for the user and notification, and never
    tried again."""
    env.clock.set(ms(2026, 3, 23, 12, 0))
    kind, u = uid("kg"), uid("g")
    path = user_with(env.srv, env.rec, u, "generic", {"types": {kind: {"channels": HOOK}}})
    gave_up = counted(env.srv, "gave_up")
    env.rec.answers.extend([(503, {"retry-after": "3600"})] * 3)
    nid = publish(env.srv, [u], kind, title="nobody home")[u]
    wait_until(lambda: env.rec.on(path))
    env.clock.advance(3600)  # still within the day: retried
    wait_until(lambda: len(env.rec.on(path)) == 2)
    quiet_moment()
    assert counted(env.srv, "gave_up") == gave_up
    env.clock.advance(23 * 3600)  # a day since the first attempt: the last try
    wait_until(lambda: len(env.rec.on(path)) == 3)
    wait_until(lambda: counted(env.srv, "gave_up") == gave_up + 1)
    assert {r.id for r in env.rec.on(path)} == {f"webhook.send:{nid}"}
    with env.srv.publisher() as pub:
        listed = wait_until(lambda: [
            f for f in pub.get("/api/console/failures", params={"channel": "webhook"}
                               ).json()["failures"]
            if f["notification"] == nid and f["kind"] == "webhook.given_up"])
    assert listed[0]["user"] == u and listed[0]["reason"] == "HTTP 503", listed
    env.clock.advance(24 * 3600)  # given up: no timer is left to try again
    quiet_moment()
    assert len(env.rec.on(path)) == 3
    env.rec.answers.clear()


def test_targets_routes(env: Env) -> None:
    name = uid("oncall-slack")
    with env.srv.publisher() as pub:
        r = pub.put(f"/api/webhook-targets/{name}", json={
            "url": env.rec.url + "/room", "format": "teams", "secret": env.rec.secret})
        assert r.status_code == 200, r.text
        assert pub.get(f"/api/webhook-targets/{name}").json() == {
            "name": name, "url": env.rec.url + "/room", "format": "teams", "signed": True}
        for bad, field in (({"url": env.rec.url, "format": "fax"}, "format"),
                           ({"url": "ftp://x.example", "format": "slack"}, "url"),
                           ({"url": env.rec.url, "format": "slack", "secret": "nope"},
                            "secret"),
                           ({"format": "slack"}, "url"),
                           ({"url": env.rec.url, "format": "slack", "x": 1}, "x"),
                           ([1], "url")):
            r = pub.put(f"/api/webhook-targets/{name}", json=bad)
            assert r.status_code == 400 and r.json()["error"]["field"] == field, (bad, r.text)
        made = pub.put(f"/api/webhook-targets/{name}", json={
            "url": env.rec.url + "/room", "format": "generic", "secret": True}).json()
        assert made["signed"] and made["secret"].startswith("whsec_")  # shown once
        assert "secret" not in pub.get(f"/api/webhook-targets/{name}").json()
        assert pub.delete(f"/api/webhook-targets/{name}").status_code == 200
        assert pub.get(f"/api/webhook-targets/{name}").status_code == 404
        assert pub.delete(f"/api/webhook-targets/{name}").status_code == 404
    u = uid("both")
    with env.srv.publisher() as pub:
        # the user record: email beside webhook, every field checked before any is written
        hook = {"url": env.rec.url + "/u", "format": "generic"}
        r = pub.put(f"/api/users/{u}", json={"email": "b@example.com",
                                             "webhook": {**hook, "format": "fax"}})
        assert r.status_code == 400 and r.json()["error"]["field"] == "webhook.format"
        assert pub.get(f"/api/users/{u}").status_code == 404  # nothing written
        r = pub.put(f"/api/users/{u}", json={"email": "b@example.com", "webhook": hook})
        assert r.status_code == 200, r.text
        record = {"user": u, "email": "b@example.com", "webhook": {**hook, "signed": False}}
        assert r.json() == record and pub.get(f"/api/users/{u}").json() == record
        assert pub.put(f"/api/users/{u}", json={"webhook": None}).json() == {
            "user": u, "webhook": None}
        assert pub.get(f"/api/users/{u}").json() == {"user": u, "email": "b@example.com"}
        r = pub.put(f"/api/users/{u}", json={"fax": 1})
        assert r.status_code == 400 and r.json()["error"]["field"] == "fax"
    with env.srv.subscriber("someone") as sub:  # publisher only
        assert sub.get(f"/api/webhook-targets/{name}").status_code in (401, 403)
    with env.srv.subscriber("someone") as sub:
        r = sub.put("/api/preferences", json={"types": {"t": {"channels": ["fax"]}}})
        assert r.status_code == 400 and r.json()["error"]["field"] == "types.t.channels"


def test_a_server_killed_between_publish_and_send_delivers_after_restart(env: Env) -> None:
    """Its own server on env's database, killed (SIGKILL) while the message waits for
    the end of a quiet period; the restarted one sends it, once."""
    kind, u = uid("kk"), uid("k")
    env.clock.set(ms(2026, 3, 12, 23, 0))
    srv = start_server(env.tmp, database=env.db, port=free_port(), extra=[
        *FAST, *env.clock.flags, "--webhook-allow-private"])
    try:
        path = user_with(srv, env.rec, u, "slack", {
            "types": {kind: {"channels": HOOK}},
            "quietHours": {"timezone": "UTC", "start": "22:00", "end": "07:00"}})
        publish(srv, [u], kind, title="survives")
    finally:
        srv.kill()  # SIGKILL: nothing runs on the way out
    env.clock.set(ms(2026, 3, 13, 7, 0))
    srv = start_server(env.tmp, database=env.db, port=free_port(), extra=[
        *FAST, *env.clock.flags, "--webhook-allow-private"])
    try:
        (got,) = wait_until(lambda: env.rec.on(path))
        assert got.verified and "survives" in got.json["text"]
        quiet_moment()
        assert len(env.rec.on(path)) == 1
    finally:
        srv.stop()


def test_a_private_address_is_refused_without_the_flag(env: Env) -> None:
    """At registration, and at send time (a target stored before the flag was
    dropped, or a name that resolves there: the address connected to is checked)."""
    kind, u = uid("kp"), uid("p")
    env.clock.set(ms(2026, 3, 16, 12, 0))
    path = user_with(env.srv, env.rec, u, "generic", {"types": {kind: {"channels": HOOK}}})
    srv = start_server(env.tmp, database=env.db, port=free_port(), extra=[
        *FAST, *env.clock.flags])  # no --webhook-allow-private
    try:
        with srv.publisher() as pub:
            for url in (env.rec.url, "http://10.0.0.8/hook", "https://192.168.1.2/x",
                        "https://[::1]/x", "https://0x7f000001/x", "http://example.com/x"):
                r = pub.put("/api/webhook-targets/x", json={"url": url, "format": "slack"})
                assert r.status_code == 400 and r.json()["error"]["field"] == "url", (url, r.text)
        env.srv.stop()  # only the flagless node claims the timer
        publish(srv, [u], kind, title="must not leave")
        wait_until(lambda: re.search(r'tocsin_webhook_sent_total\{result="refused"\} 1',
                                     httpx.get(srv.url + "/metrics").text))
        assert env.rec.on(path) == []
    finally:
        srv.stop()
        env.srv = start_server(env.tmp, database=env.db, port=free_port(), extra=[
            *FAST, *env.clock.flags, "--webhook-allow-private", "--console"])


def test_an_escalation_step_posts_to_a_named_target(env: Env) -> None:
    env.clock.set(ms(2026, 3, 19, 3, 0))
    u, room = uid("oncall"), uid("oncall-slack")
    path = f"/{room}"
    with env.srv.publisher() as pub:
        r = pub.put(f"/api/webhook-targets/{room}", json={
            "url": env.rec.url + path, "format": "slack", "secret": env.rec.secret})
        assert r.status_code == 200, r.text
        r = pub.put(f"/api/escalation-policies/{room}", json={"steps": [
            {"targets": [u], "waitSeconds": 60, "skipIfNobodyActive": False},
            {"targets": [u], "webhooks": [room], "waitSeconds": 60}]})
        assert r.status_code == 201, r.text
        bad = pub.put(f"/api/escalation-policies/{room}x", json={"steps": [
            {"targets": [u], "webhooks": ["no spaces"], "waitSeconds": 1}]})
        assert bad.status_code == 400, bad.text
        r = pub.post("/api/notifications", json={"escalation": room, "type": "alert",
                                                 "title": "DB <down>", "priority": "urgent"})
        assert r.status_code == 201, r.text
        inc = r.json()["incident"]
        quiet_moment()
        assert env.rec.on(path) == []  # step 1: the person only
        env.clock.advance(60)
        (got,) = wait_until(lambda: env.rec.on(path))
        assert got.verified and got.id == f"esc:{inc}:0:1:{room}"
        assert "DB &lt;down&gt;" in got.json["blocks"][0]["text"]["text"]
        timeline = pub.get(f"/api/incidents/{inc}").json()["timeline"]
        assert {"kind": "posted", "at": env.clock.now, "round": 1, "step": 2,
                "webhook": room} in timeline
