"""The email channel against real ``tocsin serve`` processes on SQLite and PostgreSQL,
sending to a local SMTP server (``SmtpSink``) on a random port, with the timers'
clock frozen in a file (``--test-clock-file``): emailed after ``emailAfter`` and not
before, not when read first or without an address, hourly digests, unsubscribe
links (GET and RFC 8058 one-click POST), quiet hours, ``low`` by email only,
publisher defaults, and the users route."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from tests.support.clock import Clocked, clocked, ms
from tests.support.ids import uid
from tests.support.wait import wait_until
from tocsin.channels.email.links import _key, mint_unsubscribe
from tocsin.devtools.smtp_sink import SmtpSink
from tocsin.scheduler import Timer
from tocsin.store import store_from_url
from tocsin.store.sql import SqlStore
from tocsin.store.timers import SqlTimerStore

EMAIL = ["inbox", "interrupt", "email"]


@dataclass
class Env(Clocked):
    sink: SmtpSink

    def mails(self, address: str) -> list[dict[str, Any]]:
        return [m for m in list(self.sink.messages) if address in m["to"]]

    def timers(self, kind: str | None = None) -> list[Timer]:
        """Pending timers, read from the database the server uses."""
        async def read() -> list[Timer]:
            store = store_from_url(self.db)
            await store.open()
            try:
                assert isinstance(store, SqlStore)
                return await SqlTimerStore(store.db).pending(kind)
            finally:
                await store.close()

        return asyncio.run(read())


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Env]:
    sink = SmtpSink().start()
    try:
        with clocked(Env, request.param, tmp_path_factory.mktemp("email"), [
                "--smtp-url", sink.url, "--smtp-from", "Tocsin <tocsin@example.com>"],
                sink=sink) as env:
            yield env
    finally:
        sink.stop()


def user_with(env: Env, user: str, address: str | None, prefs: dict[str, Any] | None
              ) -> None:
    with env.srv.publisher() as pub:
        if address is not None:
            r = pub.put(f"/api/users/{user}", json={"email": address})
            assert r.status_code == 200, r.text
            assert r.json() == {"user": user, "email": address}
    if prefs is not None:
        with env.srv.subscriber(user) as sub:
            r = sub.put("/api/preferences", json=prefs)
            assert r.status_code == 200, r.text


def publish(env: Env, users: list[str], type: str, **kw: Any) -> dict[str, str]:
    with env.srv.publisher() as pub:
        r = pub.post("/api/notifications", json={"recipients": users, "type": type,
                                                 "title": kw.pop("title", "Hello"), **kw})
        assert r.status_code == 201, r.text
        ids: dict[str, str] = r.json()["ids"]
        return ids


def quiet_moment() -> None:
    """Long enough for several timer polls (100 ms) to have run."""
    time.sleep(1.0)


def unsubscribe_link(mail: dict[str, Any]) -> str:
    m = re.fullmatch(r"<(.+)>", mail["headers"]["List-Unsubscribe"])
    assert m, mail["headers"]
    return m.group(1)


def test_emailed_after_email_after_unless_read_or_no_address(env: Env) -> None:
    t0 = ms(2026, 2, 2, 10, 0)
    env.clock.set(t0)
    kind = uid("comment")
    prefs = {"types": {kind: {"channels": EMAIL, "emailAfter": 60}}}
    a, b, c = uid("a"), uid("b"), uid("c")
    user_with(env, a, f"{a}@example.com", prefs)
    user_with(env, b, f"{b}@example.com", prefs)
    user_with(env, c, None, prefs)  # no address: no timer at all
    ids = publish(env, [a, b, c], kind, title="Ann <b>replied</b>\r\nBcc: x@example.com",
                  body="<script>alert(1)</script> & more", url="https://app.example.com/t/1?x=1&y=2")
    timers = {t.key for t in env.timers("email")}
    assert {ids[a], ids[b]} <= timers and ids[c] not in timers
    with env.srv.subscriber(b) as sub:  # b reads it before it is due
        assert sub.patch(f"/api/notifications/{ids[b]}", json={"read": True}).status_code == 200
    env.clock.set(t0 + 59_000)
    quiet_moment()
    assert env.mails(f"{a}@example.com") == []
    env.clock.set(t0 + 60_000)
    (mail,) = wait_until(lambda: env.mails(f"{a}@example.com"))
    # the subject is the title on one line (no header injection), the HTML escaped
    assert mail["subject"] == "Ann <b>replied</b> Bcc: x@example.com"
    assert mail["from"] == "tocsin@example.com" and mail["to"] == [f"{a}@example.com"]
    h = mail["headers"]
    assert "Bcc" not in h and h["X-Tocsin-Notification"] == ids[a]
    assert h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and h["Message-ID"]
    link = unsubscribe_link(mail)
    # no --public-url: the server's own address
    assert link.startswith(f"{env.srv.url}/api/email/unsubscribe?token=")
    assert "<script>" not in mail["html"] and "&lt;script&gt;" in mail["html"]
    assert "&lt;b&gt;replied&lt;/b&gt;" in mail["html"]
    assert 'href="https://app.example.com/t/1?x=1&amp;y=2"' in mail["html"]
    assert "<script>alert(1)</script> & more" in mail["text"]
    assert "https://app.example.com/t/1?x=1&y=2" in mail["text"] and link in mail["text"]
    quiet_moment()
    assert len(env.mails(f"{a}@example.com")) == 1
    assert env.mails(f"{b}@example.com") == [] and env.mails(f"{c}@example.com") == []
    assert not {ids[a], ids[b]} & {t.key for t in env.timers("email")}
    metrics = httpx.get(env.srv.url + "/metrics").text
    assert re.search(r'tocsin_email_sent_total\{result="sent"\} [1-9]', metrics)
    assert re.search(r'tocsin_email_sent_total\{result="unwanted"\} [1-9]', metrics)


def test_hourly_digest_lists_what_is_still_unread(env: Env) -> None:
    t0 = ms(2026, 2, 3, 10, 5)
    env.clock.set(t0)
    kind = uid("mention")
    u = uid("d")
    address = f"{u}@example.com"
    user_with(env, u, address, {"types": {kind: {"channels": EMAIL, "emailAfter": 0}},
                                "emailDigest": "hourly"})
    # titles no type name, address or token in the mail can contain ("mention1f…" holds "n1")
    titles = ["Title Alpha", "Title Bravo", "Title Charlie"]
    ids = [publish(env, [u], kind, title=t)[u] for t in titles]
    end = ms(2026, 2, 3, 11, 0)
    # each email timer fired (due at once) and queued its notification for 11:00
    wait_until(lambda: not {t.key for t in env.timers("email")} & set(ids)
               and [t for t in env.timers("email.digest") if t.key == u])
    (digest,) = [t for t in env.timers("email.digest") if t.key == u]
    assert digest.due_at == end and digest.id == f"email-digest:{u}:{end}"
    with env.srv.subscriber(u) as sub:
        assert sub.patch(f"/api/notifications/{ids[1]}", json={"read": True}).status_code == 200
    env.clock.set(end - 1000)
    quiet_moment()
    assert env.mails(address) == []
    env.clock.set(end)
    (mail,) = wait_until(lambda: env.mails(address))
    assert mail["subject"] == "2 unread notifications"
    assert mail["headers"]["X-Tocsin-Notification"].split() == [ids[0], ids[2]]
    assert titles[0] in mail["text"] and titles[2] in mail["text"]
    assert titles[1] not in mail["text"]
    assert titles[0] in mail["html"] and titles[1] not in mail["html"]
    quiet_moment()
    assert len(env.mails(address)) == 1
    assert not [t for t in env.timers("email.digest") if t.key == u]


def test_unsubscribe_links_turn_that_type_off(env: Env) -> None:
    env.clock.set(ms(2026, 2, 4, 9, 0))
    ka, kb = uid("ka"), uid("kb")
    u = uid("s")
    address = f"{u}@example.com"
    user_with(env, u, address, {"types": {
        ka: {"channels": EMAIL, "emailAfter": 0, "minPriority": "medium"},
        kb: {"channels": EMAIL, "emailAfter": 0}}, "emailDigest": "off"})
    publish(env, [u], ka, title="first a")
    publish(env, [u], kb, title="first b")
    mails = wait_until(lambda: len(env.mails(address)) == 2 and env.mails(address))
    by_title = {m["subject"]: m for m in mails}
    link_a, link_b = (unsubscribe_link(by_title["first a"]),
                      unsubscribe_link(by_title["first b"]))
    # GET: a small HTML page naming the type; a second click says the same
    for _ in range(2):
        r = httpx.get(link_a)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert ka in r.text and "no longer" in r.text
        assert "default-src 'none'" in r.headers["content-security-policy"]
    with env.srv.subscriber(u) as sub:
        types = sub.get("/api/preferences").json()["types"]
    assert types[ka]["channels"] == ["inbox", "interrupt"]
    assert types[ka]["minPriority"] == "medium" and types[kb]["channels"] == EMAIL
    publish(env, [u], ka, title="second a")
    publish(env, [u], kb, title="second b")
    wait_until(lambda: "second b" in {m["subject"] for m in env.mails(address)})
    quiet_moment()
    assert "second a" not in {m["subject"] for m in env.mails(address)}
    # RFC 8058 one-click: a form-encoded POST to the List-Unsubscribe URL
    r = httpx.post(link_b, content=b"List-Unsubscribe=One-Click",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert r.json() == {"unsubscribed": [kb]}
    bad = httpx.post(link_b, content=b"List-Unsubscribe=Maybe",
                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert bad.status_code == 400
    publish(env, [u], kb, title="third b")
    quiet_moment()
    assert "third b" not in {m["subject"] for m in env.mails(address)}
    with env.srv.subscriber(u) as sub:
        got = sub.get("/api/preferences").json()
    assert got["types"][kb]["channels"] == ["inbox", "interrupt"]
    assert got["emailDigest"] == "off"


def test_forged_expired_and_other_tokens_are_refused(env: Env) -> None:
    u, kind = uid("f"), uid("kf")
    base = f"{env.srv.url}/api/email/unsubscribe"
    forged = mint_unsubscribe("another-secret-0123456789abcdef0123", u, [kind])
    expired = mint_unsubscribe(env.srv.secret, u, [kind], now_s=int(time.time()) - 10,
                               ttl_s=5)
    other = jwt.encode({"sub": u, "types": [kind], "purpose": "login",
                        "exp": int(time.time()) + 60}, _key(env.srv.secret), algorithm="HS256")
    for token, status, words in [(forged, 401, "not signed by this server"),
                                 (expired, 401, "expired"),
                                 (other, 400, "not an unsubscribe token"),
                                 (env.srv.token(u), 401, "not signed by this server"),
                                 ("garbage", 400, "damaged")]:
        r = httpx.get(base, params={"token": token})
        assert r.status_code == status and words in r.text, (token, r.text)
        assert r.headers["content-type"].startswith("text/html")
        r = httpx.post(base, params={"token": token}, content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == status and words in r.json()["error"]["message"]
    assert httpx.get(base).status_code == 400
    # the unsubscribe token is no login: refused as a subscriber credential
    good = mint_unsubscribe(env.srv.secret, u, [kind])
    r = httpx.get(env.srv.url + "/api/preferences", params={"token": good})
    assert r.status_code == 401
    # other routes still refuse form bodies
    with env.srv.publisher() as pub:
        r = pub.put(f"/api/users/{u}", content=b"email=x%40example.com",
                    headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415


def test_quiet_hours_delay_the_email_to_their_end(env: Env) -> None:
    kind = uid("kq")
    u = uid("q")
    address = f"{u}@example.com"
    user_with(env, u, address, {"types": {kind: {"channels": EMAIL, "emailAfter": 60}},
                                "quietHours": {"timezone": "UTC", "start": "22:00",
                                               "end": "07:00"}})
    env.clock.set(ms(2026, 2, 5, 23, 0))
    nid = publish(env, [u], kind, title="at night")[u]
    (timer,) = [t for t in env.timers("email") if t.key == nid]
    assert timer.due_at == ms(2026, 2, 6, 7, 0)
    env.clock.set(ms(2026, 2, 6, 6, 59))
    quiet_moment()
    assert env.mails(address) == []
    env.clock.set(ms(2026, 2, 6, 7, 0))
    (mail,) = wait_until(lambda: env.mails(address))
    assert mail["subject"] == "at night"


def test_quiet_period_begun_after_publish_retries_at_its_end(env: Env) -> None:
    """DND set after the timer was written: the handler's RetryLater moves it."""
    kind, u = uid("kr"), uid("r")
    address = f"{u}@example.com"
    t0 = ms(2026, 2, 7, 12, 0)
    env.clock.set(t0)
    user_with(env, u, address, {"types": {kind: {"channels": EMAIL, "emailAfter": 60}}})
    publish(env, [u], kind, title="later")
    with env.srv.subscriber(u) as sub:
        assert sub.put("/api/preferences", json={
            "types": {kind: {"channels": EMAIL, "emailAfter": 60}},
            "dnd": {"until": t0 + 600_000}}).status_code == 200
    env.clock.set(t0 + 60_000)
    quiet_moment()
    assert env.mails(address) == []
    env.clock.set(t0 + 600_000)
    wait_until(lambda: env.mails(address))


def test_low_priority_goes_by_email_only(env: Env) -> None:
    kind, u = uid("kl"), uid("l")
    env.clock.set(ms(2026, 2, 8, 12, 0))
    user_with(env, u, f"{u}@example.com", {"types": {kind: {
        "channels": ["inbox", "interrupt", "push", "email"], "pushMinPriority": "low",
        "emailAfter": 600}}})
    # a (fake) push subscription, so only the rule can keep the push timer out
    env.sql("INSERT INTO tocsin_push_subscriptions (id, user_id, endpoint, p256dh, auth, "
            "created_at) VALUES (:id, :u, :e, 'k', 'a', 0)",
            {"id": uid("sub"), "u": u, "e": f"https://push.invalid/{u}"})
    nid = publish(env, [u], kind, priority="low")[u]
    assert [t.key for t in env.timers("email")].count(nid) == 1
    assert nid not in {t.key for t in env.timers("push")}
    env.sql("DELETE FROM tocsin_push_subscriptions WHERE user_id = :u", {"u": u})


def test_publisher_defaults_enable_email_for_users_without_prefs(env: Env) -> None:
    kind = uid("kd")
    env.clock.set(ms(2026, 2, 9, 12, 0))
    u, v = uid("p"), uid("o")
    user_with(env, u, f"{u}@example.com", None)
    user_with(env, v, f"{v}@example.com", None)
    with env.srv.publisher() as pub:
        old = pub.get("/api/preferences/defaults").json()
        r = pub.put("/api/preferences/defaults", json={"types": {
            **old["types"], kind: {"channels": EMAIL, "emailAfter": 0}}})
        assert r.status_code == 200, r.text
    try:
        publish(env, [u, v], kind, title="from defaults")
        wait_until(lambda: env.mails(f"{u}@example.com") and env.mails(f"{v}@example.com"))
        # one-click for u: u gets an entry of their own (the default without email)
        link = unsubscribe_link(env.mails(f"{u}@example.com")[0])
        token = parse_qs(urlsplit(link).query)["token"][0]
        r = httpx.post(f"{env.srv.url}/api/email/unsubscribe", params={"token": token},
                       data={"List-Unsubscribe": "One-Click"})
        assert r.status_code == 200
        with env.srv.subscriber(u) as sub:
            assert sub.get("/api/preferences").json()["types"][kind]["channels"] == [
                "inbox", "interrupt"]
        publish(env, [u, v], kind, title="again")
        wait_until(lambda: len(env.mails(f"{v}@example.com")) == 2)
        quiet_moment()
        assert len(env.mails(f"{u}@example.com")) == 1
    finally:
        with env.srv.publisher() as pub:
            pub.put("/api/preferences/defaults", json={"types": old["types"]})


def test_users_route(env: Env) -> None:
    u = uid("w")
    with env.srv.publisher() as pub:
        assert pub.get(f"/api/users/{u}").status_code == 404
        for bad in ["plain", "two@@example.com", "a@b@example.com", "sp ace@example.com",
                    "x@example.com\r\nBcc: y@example.com", "nodot@localhost", "@example.com",
                    "x@", "x" * 250 + "@example.com", 42, ["x@example.com"]]:
            r = pub.put(f"/api/users/{u}", json={"email": bad})
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["error"]["field"] == "email"
        assert pub.put(f"/api/users/{u}", json={}).status_code == 400
        assert pub.put(f"/api/users/{u}", json={"email": "a@example.com", "x": 1}
                       ).status_code == 400
        assert pub.put(f"/api/users/{u}", content=b"[1", headers={
            "content-type": "application/json"}).status_code == 400
        assert pub.put("/api/users/" + "x" * 201, json={"email": "a@example.com"}
                       ).status_code == 400
        assert pub.put("/api/users/a%00b", json={"email": "a@example.com"}).status_code == 400
        assert pub.get("/api/users/a%00b").status_code == 400
        r = pub.put(f"/api/users/{u}", json={"email": "Ann@Example.COM"})
        assert r.status_code == 200 and r.json() == {"user": u, "email": "Ann@example.com"}
        assert pub.get(f"/api/users/{u}").json() == {"user": u, "email": "Ann@example.com"}
        r = pub.put(f"/api/users/{u}", json={"email": None})
        assert r.json() == {"user": u, "email": None}
        assert pub.get(f"/api/users/{u}").json() == {"user": u, "email": None}
    with env.srv.subscriber(u) as sub:
        assert sub.put(f"/api/users/{u}", json={"email": "a@example.com"}).status_code == 403
        assert sub.get(f"/api/users/{u}").status_code == 403


def test_unsubscribe_works_beyond_the_type_cap(env: Env) -> None:
    """Issue 21 item 8: a user with 100 types (the most PUT /api/preferences takes)
    got 400 from both the link and the one-click POST; the link must always work."""
    u, kx, ky = uid("cap"), uid("kx"), uid("ky")
    # "*" has email: the types the links name get an entry of their own without it
    hundred = {"*": {"channels": EMAIL}, **{f"k{i}": {"channels": EMAIL} for i in range(99)}}
    user_with(env, u, None, {"types": hundred})
    base = f"{env.srv.url}/api/email/unsubscribe"
    r = httpx.get(base, params={"token": mint_unsubscribe(env.srv.secret, u, [kx])})
    assert r.status_code == 200 and kx in r.text, r.text
    r = httpx.post(base, params={"token": mint_unsubscribe(env.srv.secret, u, [ky, "k7"])},
                   content=b"List-Unsubscribe=One-Click",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json() == {"unsubscribed": [ky, "k7"]}, r.text
    with env.srv.subscriber(u) as sub:
        got = sub.get("/api/preferences").json()
        types = got["types"]
        assert len(types) == 102
        assert types[kx]["channels"] == types[ky]["channels"] == ["inbox", "interrupt"]
        assert types["k7"]["channels"] == ["inbox", "interrupt"]
        assert types["k8"]["channels"] == EMAIL
        # the settings page sends back what GET showed: still accepted
        got.pop("defaults")
        assert sub.put("/api/preferences", json=got).status_code == 200
        # but the API adds no type beyond 100
        more = {**got, "types": {**types, "one-more": {}}}
        r = sub.put("/api/preferences", json=more)
        assert r.status_code == 400 and r.json()["error"]["field"] == "types", r.text
        assert sub.put("/api/preferences", json={"types": hundred}).status_code == 200
        r = sub.put("/api/preferences", json={"types": {**hundred, "one-more": {}}})
        assert r.status_code == 400, r.text


def test_old_link_with_a_control_character_type_still_works(env: Env) -> None:
    """Issue 21 item 8: publish took the type "t\\x0bype" and its email's link then
    answered 400 for good. Publish refuses such a type now (tests/api/test_text_rule.py);
    a link from before leaves it out, since no email of that type can come again."""
    u, k = uid("cc"), uid("k")
    user_with(env, u, None, {"types": {"*": {"channels": EMAIL}}})
    with env.srv.publisher() as pub:
        r = pub.post("/api/notifications", json={"recipients": [u], "type": "t\x0bype",
                                                 "title": "x"})
        assert r.status_code == 400 and r.json()["error"]["field"] == "type", r.text
    token = mint_unsubscribe(env.srv.secret, u, ["t\x0bype", k])
    r = httpx.get(f"{env.srv.url}/api/email/unsubscribe", params={"token": token})
    assert r.status_code == 200, r.text
    with env.srv.subscriber(u) as sub:
        assert sorted(sub.get("/api/preferences").json()["types"]) == sorted(["*", k])


@pytest.mark.parametrize("address", ["alice@host.local", "alice@example.test",
                                     "alice@mail.localhost", "alice@nas.home.arpa"])
def test_addresses_on_special_use_domains_are_accepted_and_mailed(env: Env,
                                                                  address: str) -> None:
    """Issue 21 item 14: email-validator refuses special-use domains by default, and
    intranets (Active Directory's .local) and test set-ups use exactly those."""
    env.clock.set(ms(2026, 2, 5, 9, 0))
    u, kind = uid("sp"), uid("ks")
    user_with(env, u, address, {"types": {kind: {"channels": EMAIL, "emailAfter": 0}}})
    publish(env, [u], kind, title="to an intranet address")
    [mail] = wait_until(lambda: env.mails(address))
    assert mail["subject"] == "to an intranet address"
