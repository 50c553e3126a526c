"""Web Push against real ``tocsin serve`` processes on SQLite and PostgreSQL, pushing
to the local push service (``tocsin.devtools.push_service``) on its own uvicorn on a
random loopback port (hence ``--push-allow-insecure``): registration and its
checks, the VAPID key (route, ``tocsin vapid``, two servers on one database), what
is pushed when (priority, preferences, a visible tab, quiet hours), and how each
push service answer is handled (410, 429 + Retry-After, the service down, the
server killed before it sent)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.channels.pushsvc import PushServiceThread
from tests.support.clock import Clock
from tests.support.server import ServerProcess, mint, start_server
from tests.support.services import database_url, drop_pg_schema, need_postgres, pg_schema_url
from tests.support.wait import wait_until
from tocsin.channels.push.vapid import generate, private_text, public_text

EXTRA = ["--push-allow-insecure", "--presence-interval", "500ms", "--timer-poll", "100ms",
         "--heartbeat", "1s", "--rate-reads", "off"]


@dataclass
class Env:
    srv: ServerProcess
    push: PushServiceThread
    clock: Clock
    database: str
    tmp: Path

    def subscribe(self, user: str, label: str = "") -> dict[str, Any]:
        """A new device of ``user``'s, registered: its subscription JSON plus ``id``."""
        dev = self.push.device(label or user)
        with self.srv.subscriber(user) as sub:
            r = sub.post("/api/push-subscriptions", json=dev)
        assert r.status_code == 201, r.text
        return {**dev, "id": r.json()["id"]}

    def publish(self, user: str, **kw: Any) -> str:
        with self.srv.publisher() as pub:
            r = pub.post("/api/notifications", json={
                "recipients": [user], "type": "comment", "title": "t", **kw})
        assert r.status_code == 201, r.text
        return str(r.json()["ids"][user])

    def counter(self, result: str) -> float:
        text = httpx.get(self.srv.url + "/metrics", timeout=5).text
        line = f'tocsin_push_sent_total{{result="{result}"}} '
        m = re.search("^" + re.escape(line) + r"(\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("push")
    url, schema = database_url(request.param, tmp)
    clock = Clock(tmp / "clock")
    clock.path.unlink()  # the system clock until a test sets one
    push = PushServiceThread().start()
    srv = start_server(tmp, database=url, extra=[*EXTRA, *clock.flags])
    try:
        push.service.expected_key = httpx.get(
            srv.url + "/api/push/vapid-public-key").json()["publicKey"]
        time.sleep(1)  # presence is known 1.5 intervals after the start
        yield Env(srv, push, clock, url, tmp)
    finally:
        srv.stop()
        push.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))


@pytest.fixture
def user() -> str:
    return "u" + uuid.uuid4().hex[:10]


# -- registration ----------------------------------------------------------------------

def test_registration_checks_the_subscription(env: Env, user: str) -> None:
    good = env.push.device()
    keys = good["keys"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "endpoint": "http://push.example.net/x"}, "endpoint"),
        ({**good, "endpoint": "ftp://push.example.net/x"}, "endpoint"),
        ({**good, "endpoint": "https://user:pw@push.example.net/x"}, "endpoint"),
        ({**good, "endpoint": "https://10.1.2.3/x"}, "endpoint"),
        ({**good, "endpoint": "https://192.168.0.9/x"}, "endpoint"),
        ({**good, "endpoint": "https://169.254.169.254/latest"}, "endpoint"),
        ({**good, "endpoint": "https://[fe80::1]/x"}, "endpoint"),
        ({**good, "endpoint": "https://[::ffff:10.0.0.1]/x"}, "endpoint"),
        ({**good, "endpoint": "https://0.0.0.0/x"}, "endpoint"),
        ({**good, "endpoint": "https://push.example.net/" + "a" * 2030}, "endpoint"),
        ({**good, "endpoint": "not a url"}, "endpoint"),
        ({**good, "keys": {**keys, "p256dh": keys["p256dh"][:-4]}}, "keys.p256dh"),
        ({**good, "keys": {**keys, "p256dh": "B" + "A" * 86}}, "keys.p256dh"),  # off curve
        ({**good, "keys": {**keys, "p256dh": "%%%"}}, "keys.p256dh"),
        ({**good, "keys": {**keys, "auth": "AAAAAAAAAAAAAAAAAAAA"}}, "keys.auth"),  # 15 bytes
        ({"endpoint": good["endpoint"]}, "keys"),
        ({"keys": keys}, "endpoint"),
    ]
    with env.srv.subscriber(user) as sub:
        for body, field in cases:
            r = sub.post("/api/push-subscriptions", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"]["field"] == field, (body, r.text)
        # the browser's own shape, padding or not, expirationTime null or a number
        padded = {**keys, "p256dh": keys["p256dh"] + "=", "auth": keys["auth"] + "=="}
        for body in ({**good, "expirationTime": 1_900_000_000_000},
                     {**good, "keys": padded, "expirationTime": None}):
            r = sub.post("/api/push-subscriptions", json=body)
            assert r.status_code == 201, r.text
        # public https endpoints; loopback only thanks to --push-allow-insecure
        for endpoint in ("https://fcm.googleapis.com/fcm/send/abc",
                         "https://updates.push.services.mozilla.com/wpush/v2/x",
                         "http://localhost:9/x", "https://[::1]:9/x"):
            r = sub.post("/api/push-subscriptions", json={**good, "endpoint": endpoint})
            assert r.status_code == 201, (endpoint, r.text)
    with env.srv.publisher() as pub:
        r = pub.post("/api/push-subscriptions", json=good)
        assert r.status_code == 403 and "user's token" in r.json()["error"]["message"]
        assert pub.get("/api/push-subscriptions").status_code == 403
    assert httpx.post(env.srv.url + "/api/push-subscriptions", json=good).status_code == 401


def test_one_device_is_one_subscription_and_the_list_is_capped(env: Env, user: str) -> None:
    other = "o" + user
    dev = env.push.device()
    with env.srv.subscriber(user) as sub, env.srv.subscriber(other) as sub2:
        first = sub.post("/api/push-subscriptions", json=dev).json()["id"]
        assert sub.post("/api/push-subscriptions", json=dev).json()["id"] == first
        items = sub.get("/api/push-subscriptions").json()["items"]
        assert [i["id"] for i in items] == [first]
        assert items[0]["endpoint"] == f"http://127.0.0.1:{env.push.port}"  # origin only
        assert items[0]["lastSentAt"] is None and isinstance(items[0]["createdAt"], int)
        # the same browser, another user signed in: the device moves
        assert sub2.post("/api/push-subscriptions", json=dev).json()["id"] == first
        assert sub.get("/api/push-subscriptions").json()["items"] == []
        assert [i["id"] for i in sub2.get("/api/push-subscriptions").json()["items"]] == [first]
        assert sub.delete(f"/api/push-subscriptions/{first}").status_code == 404  # not yours
        assert sub2.delete(f"/api/push-subscriptions/{first}").status_code == 204
        assert sub2.delete(f"/api/push-subscriptions/{first}").status_code == 404
        # at most 20 per user: the 21st removes the oldest
        ids = [sub.post("/api/push-subscriptions", json=env.push.device()).json()["id"]
               for _ in range(21)]
        listed = [i["id"] for i in sub.get("/api/push-subscriptions").json()["items"]]
        assert len(listed) == 20 and set(listed) == set(ids[1:])


# -- the VAPID key ---------------------------------------------------------------------

def vapid_cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tocsin", "vapid", *args], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_public_key_route_and_tocsin_vapid(env: Env) -> None:
    r = httpx.get(env.srv.url + "/api/push/vapid-public-key")  # no credentials
    assert r.status_code == 200 and "max-age" in r.headers["cache-control"]
    key = r.json()["publicKey"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{87}", key)  # 65 bytes, unpadded base64url
    assert httpx.get(env.srv.url + "/api/push/vapid-public-key").json()["publicKey"] == key
    assert vapid_cli("--database", env.database) == key  # the key the server keeps
    given = generate()
    assert vapid_cli("--vapid-private-key", private_text(given)) == public_text(given)


def test_two_servers_on_one_database_agree_on_the_key(tmp_path: Path) -> None:
    need_postgres()
    schema = "t_" + uuid.uuid4().hex[:12]
    url = pg_schema_url(schema)
    try:
        with ThreadPoolExecutor(2) as pool:  # both first starts at once
            servers = list(pool.map(
                lambda _: start_server(tmp_path, database=url), (0, 1)))
        try:
            keys = {httpx.get(s.url + "/api/push/vapid-public-key").json()["publicKey"]
                    for s in servers}
            assert len(keys) == 1
            assert vapid_cli("--database", url) == keys.pop()
        finally:
            for s in servers:
                s.stop()
    finally:
        asyncio.run(drop_pg_schema(schema))


# -- what is pushed, when --------------------------------------------------------------

def test_high_reaches_a_closed_tab_decrypted_and_signed(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    nid = env.publish(user, title="Deploy failed", body="build 42", priority="high",
                      url="https://ci.example.com/42")
    (msg,) = env.push.wait(dev["endpoint"])
    p = msg["payload"]
    assert (p["id"], p["title"], p["body"], p["url"], p["priority"], p["type"]) == (
        nid, "Deploy failed", "build 42", "https://ci.example.com/42", "high", "comment")
    assert isinstance(p["timestamp"], int)
    # the local service verified the VAPID JWT (ES256 by the server's key, aud its origin)
    assert msg["vapid"]["aud"] == f"http://127.0.0.1:{env.push.port}"
    assert msg["vapid"]["sub"] == "mailto:admin@localhost"
    assert time.time() < msg["vapid"]["exp"] <= time.time() + 24 * 3600
    assert msg["headers"]["Urgency"] == "high" and msg["headers"]["Topic"] == nid
    assert 27 * 86400 < int(msg["headers"]["TTL"]) <= 28 * 86400
    with env.srv.subscriber(user) as sub:
        (item,) = sub.get("/api/push-subscriptions").json()["items"]
        assert item["lastSentAt"] is not None


def test_the_read_token_marks_read_and_nothing_else(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    nid = env.publish(user, priority="urgent")
    token = env.push.wait(dev["endpoint"])[0]["payload"]["readToken"]
    read = env.srv.url + "/api/push/read"
    # a forged token (another secret), a session token, garbage: refused
    forged = jwt.encode({"sub": user, "nid": nid, "purpose": "push-read",
                         "aud": "tocsin:push-read", "exp": int(time.time()) + 60},
                        "x" * 40, algorithm="HS256")
    assert httpx.post(read, json={"token": forged}).status_code == 401
    assert httpx.post(read, json={"token": mint(user)}).status_code == 403
    other = jwt.encode({"sub": user, "nid": nid, "purpose": "unsubscribe",
                        "aud": "tocsin:push-read", "exp": int(time.time()) + 60},
                       env.srv.secret, algorithm="HS256")
    assert httpx.post(read, json={"token": other}).status_code == 403
    assert httpx.post(read, json={"token": "nope"}).status_code == 401
    # the read token is no session: refused as a bearer token
    r = httpx.get(env.srv.url + "/api/notifications",
                  headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    with env.srv.subscriber(user) as sub:
        assert sub.get(f"/api/notifications/{nid}").json()["read"] is False
        assert httpx.post(read, json={"token": token}).status_code == 204
        assert sub.get(f"/api/notifications/{nid}").json()["read"] is True
        assert httpx.post(read, json={"token": token}).status_code == 204  # idempotent


def test_medium_is_pushed_only_from_push_min_priority(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    medium = env.publish(user, priority="medium")
    high = env.publish(user, priority="high")
    (msg,) = env.push.wait(dev["endpoint"])
    assert msg["payload"]["id"] == high
    with env.srv.subscriber(user) as sub:
        r = sub.put("/api/preferences", json={"types": {"comment": {"pushMinPriority": "medium"}}})
        assert r.status_code == 200, r.text
    medium2 = env.publish(user, priority="medium")
    got = env.push.wait(dev["endpoint"], 2)
    assert got[1]["payload"]["id"] == medium2
    assert got[1]["headers"]["Urgency"] == "normal"
    time.sleep(0.3)
    assert medium not in {m["payload"]["id"] for m in env.push.service.messages(dev["endpoint"])}


def test_a_type_without_the_push_channel_is_not_pushed(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    with env.srv.subscriber(user) as sub:
        r = sub.put("/api/preferences",
                    json={"types": {"comment": {"channels": ["inbox", "interrupt"]}}})
        assert r.status_code == 200, r.text
    env.publish(user, priority="urgent")
    marker = env.publish(user, priority="urgent", type="other")
    env.push.wait(dev["endpoint"])
    time.sleep(0.5)
    assert [m["payload"]["id"] for m in env.push.service.messages(dev["endpoint"])] == [marker]


@contextmanager
def open_tab(srv: ServerProcess, user: str) -> Iterator[None]:
    """The user's inbox stream held open (a tab), read in a thread until closed."""
    stop = threading.Event()
    opened = threading.Event()

    def run() -> None:
        headers = {"Authorization": f"Bearer {srv.token(user)}"}
        with httpx.Client(timeout=httpx.Timeout(5, read=2)) as c, \
                c.stream("GET", srv.url + "/api/notifications/stream", headers=headers) as r:
            opened.set()
            while not stop.is_set():
                try:
                    for _ in r.iter_lines():
                        if stop.is_set():
                            return
                except httpx.ReadTimeout:
                    return

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert opened.wait(10)
    try:
        yield
    finally:
        stop.set()
        t.join(10)


def presence_of(srv: ServerProcess, user: str) -> str:
    with srv.publisher() as pub:
        return str(pub.get(f"/api/users/{user}/presence").json()["state"])


def test_a_visible_tab_is_not_pushed_an_idle_one_is(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    with open_tab(env.srv, user):
        with env.srv.subscriber(user) as sub:
            assert sub.put("/api/presence", json={"state": "active"}).status_code == 200
        wait_until(lambda: presence_of(env.srv, user) == "active", 5)
        seen = env.counter("visible")
        env.publish(user, priority="high")
        wait_until(lambda: env.counter("visible") == seen + 1, 10)
        assert env.push.service.messages(dev["endpoint"]) == []
        # the tab went to the background: the user is idle, a push it is
        with env.srv.subscriber(user) as sub:
            assert sub.put("/api/presence", json={"state": "idle"}).status_code == 200
        nid = env.publish(user, priority="high")
        assert env.push.wait(dev["endpoint"])[0]["payload"]["id"] == nid


def test_quiet_hours_delay_the_push_to_their_end(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    env.clock.set(ms(2030, 1, 7, 23, 0))
    try:
        with env.srv.subscriber(user) as sub:
            r = sub.put("/api/preferences", json={"quietHours": {
                "timezone": "UTC", "start": "22:00", "end": "07:00"}})
            assert r.status_code == 200, r.text
        nid = env.publish(user, priority="high")
        time.sleep(1.5)
        assert env.push.service.messages(dev["endpoint"]) == []
        env.clock.set(ms(2030, 1, 8, 6, 59))
        time.sleep(0.5)
        assert env.push.service.messages(dev["endpoint"]) == []
        env.clock.set(ms(2030, 1, 8, 7, 0, 1))
        assert env.push.wait(dev["endpoint"])[0]["payload"]["id"] == nid
    finally:
        env.clock.path.unlink()


# -- what the push service answers -----------------------------------------------------

def test_410_deletes_the_subscription(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    env.push.service.set_response(dev["endpoint"], 410)
    env.publish(user, priority="high")
    env.push.wait(dev["endpoint"], status=410)
    with env.srv.subscriber(user) as sub:
        wait_until(lambda: sub.get("/api/push-subscriptions").json()["items"] == [], 5)
    assert env.counter("gone") >= 1


def test_429_is_retried_after_retry_after(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    env.push.service.set_response(dev["endpoint"], 429, retry_after=2)
    nid = env.publish(user, priority="high")
    (refused,) = env.push.wait(dev["endpoint"], status=429)
    (done,) = env.push.wait(dev["endpoint"], status=201, within=15)
    assert done["payload"]["id"] == refused["payload"]["id"] == nid
    assert done["at"] - refused["at"] >= 1900


def test_a_push_service_that_is_down_gets_it_when_back(env: Env, user: str) -> None:
    dev = env.subscribe(user)
    errors = env.counter("error")
    env.push.stop()
    try:
        nid = env.publish(user, priority="high")
        wait_until(lambda: env.counter("error") > errors, 10)  # connection refused
    finally:
        env.push.start()
    assert env.push.wait(dev["endpoint"], within=20)[0]["payload"]["id"] == nid


def test_a_server_killed_before_it_pushed_pushes_after_restart(tmp_path: Path, env: Env,
                                                               user: str) -> None:
    """Its own server on its own database, killed while the push waits for the end of
    a quiet period; the restarted one sends it, once."""
    url, schema = database_url("postgres" if "postgresql" in env.database else "sqlite",
                               tmp_path)
    clock = Clock(tmp_path / "clock")
    clock.set(ms(2030, 1, 7, 23, 0))
    args = [*EXTRA, *clock.flags]
    srv = start_server(tmp_path, database=url, extra=args)
    module_key = env.push.service.expected_key
    env.push.service.expected_key = httpx.get(
        srv.url + "/api/push/vapid-public-key").json()["publicKey"]  # its own database's
    try:
        dev = env.push.device()
        with srv.subscriber(user) as sub:
            assert sub.post("/api/push-subscriptions", json=dev).status_code == 201
            assert sub.put("/api/preferences", json={"quietHours": {
                "timezone": "UTC", "start": "22:00", "end": "07:00"}}).status_code == 200
        with srv.publisher() as pub:
            r = pub.post("/api/notifications", json={"recipients": [user], "type": "x",
                                                     "title": "t", "priority": "high"})
            nid = r.json()["ids"][user]
        srv.kill()
        srv = start_server(tmp_path, database=url, extra=args, port=srv.port)
        time.sleep(1)  # presence is known (a push waits while it is not)
        clock.set(ms(2030, 1, 8, 7, 30))
        assert env.push.wait(dev["endpoint"], within=30)[0]["payload"]["id"] == nid
        time.sleep(1)
        assert len(env.push.service.messages(dev["endpoint"])) == 1
    finally:
        env.push.service.expected_key = module_key
        srv.stop()
        if schema:
            asyncio.run(drop_pg_schema(schema))
