"""The SDK against a real server (issue 27): typed results, every publisher route,
UserClient, the exception family, one token per token function call, the WebSocket
auth message, observable reconnects."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ServerProcess, free_port, mint, start_server
from tests.support.wait import eventually
from tocsin.client import (
    AsyncUserClient,
    AuthenticationError,
    ConflictError,
    Event,
    NotFoundError,
    PolicyStep,
    Publisher,
    Status,
    TocsinAPIError,
    TocsinConnectionError,
    TocsinError,
    UserClient,
    ValidationError,
    subscribe,
)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("sdk"), extra=["--heartbeat", "1s"])
    try:
        yield server
    finally:
        server.stop()


class Recorder(httpx.BaseTransport):
    """The requests a client sent, sent on for real."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return self.inner.handle_request(request)


def test_publish_reports_skipped_and_silent_recipients(srv: ServerProcess, uid: str) -> None:
    off, quiet, plain = f"{uid}-off", f"{uid}-quiet", f"{uid}-plain"
    with UserClient(srv.url, srv.token(off)) as u:
        u.set_preferences(types={"promo": {"channels": []}})
    with UserClient(srv.url, srv.token(quiet)) as u:
        u.set_preferences(dnd={"until": int(time.time() * 1000) + 3_600_000})
    with Publisher(srv.url, srv.api_key) as pub:
        result = pub.publish([off, quiet, plain], "Sale", type="promo")
    # Before: {} for a recipient skipped by preferences, and no skipped/silent at all.
    assert set(result.ids) == {quiet, plain}
    assert result.skipped == {off: "preferences"}
    assert result.silent == {quiet: "dnd"}
    assert result.incident is None


def test_a_bare_string_of_recipients_is_refused_before_anything_is_sent(
        srv: ServerProcess, uid: str) -> None:
    rec = Recorder()
    with Publisher(srv.url, srv.api_key, transport=rec) as pub, \
            pytest.raises(TypeError, match="list of str"):
        pub.publish(uid, "hi")
    assert rec.sent == []  # not published to each of its letters


def test_keys_with_reserved_characters_address_their_own_notification(
        srv: ServerProcess, uid: str) -> None:
    with Publisher(srv.url, srv.api_key) as pub:
        pub.publish([uid], "plain", idempotency_key=f"ticket-{uid}")
        hashed = pub.publish([uid], "hashed", idempotency_key=f"ticket-{uid}#2")
        slashed = pub.publish([uid], "slashed", idempotency_key=f"ticket/{uid}?x=1")
        # Before, "ticket-X#2" in the raw path edited "ticket-X".
        assert pub.update(f"ticket-{uid}#2", title="hashed, edited") == hashed.ids
        assert pub.retract(f"ticket/{uid}?x=1") == slashed.ids
        with pytest.raises(NotFoundError):
            pub.update(f"nothing-{uid}#x", title="t")
    with UserClient(srv.url, srv.token(uid)) as u:
        titles = {n["title"] for n in u.notifications()["items"]}
    assert titles == {"plain", "hashed, edited"}


def test_escalation_policies_incidents_and_ack(srv: ServerProcess, uid: str) -> None:
    rec = Recorder()
    name = f"oncall:{uid}"
    step: PolicyStep = {"targets": [f"{uid}-a"], "waitSeconds": 300,
                        "skipIfNobodyActive": False}
    with Publisher(srv.url, srv.api_key, transport=rec) as pub:
        policy = pub.put_policy(name, [step], repeat=1)
        assert (policy["name"], policy["repeat"]) == (name, 1)
        assert pub.get_policy(name)["steps"][0]["targets"] == [f"{uid}-a"]
        opened = pub.publish([], "Disk full", priority="urgent", escalation=name)
        sent = json.loads(rec.sent[-1].content)
        # The server refuses a key with escalation: none is made up for it.
        assert "idempotencyKey" not in sent and sent["escalation"] == name
        assert opened.incident and set(opened.ids) == {f"{uid}-a"}
        incident = pub.incident(opened.incident)
        assert (incident["id"], incident["policy"], incident["state"]) == (
            opened.incident, name, "open")
        with UserClient(srv.url, srv.token(f"{uid}-a")) as u:
            acked = u.ack(opened.ids[f"{uid}-a"])
        assert (acked["state"], acked["ackedBy"]) == ("acked", f"{uid}-a")
        assert pub.incident(opened.incident)["state"] == "acked"
        pub.delete_policy(name)
        with pytest.raises(NotFoundError) as gone:
            pub.get_policy(name)
        assert (gone.value.status, gone.value.code) == (404, "not_found")
        with pytest.raises(ValidationError) as bad:
            pub.put_policy(name, [])
        assert bad.value.status == 400


def test_defaults_and_users(srv: ServerProcess, uid: str) -> None:
    with Publisher(srv.url, srv.api_key) as pub:
        kind = f"digest-{uid}"
        saved = pub.set_defaults({kind: {"channels": ["inbox"], "minPriority": "high"}})
        assert saved["types"][kind]["minPriority"] == "high"
        assert pub.defaults()["types"][kind]["channels"] == ["inbox"]
        with pytest.raises(NotFoundError):
            pub.get_user(f"{uid}#odd")
        assert pub.set_user(f"{uid}#odd", email="a@example.com") == {
            "user": f"{uid}#odd", "email": "a@example.com"}
        assert pub.get_user(f"{uid}#odd")["email"] == "a@example.com"
        with pytest.raises(ValidationError) as bad:
            pub.set_user(uid, email="not an address")
        assert bad.value.field == "email"


def test_user_client_covers_a_users_inbox(srv: ServerProcess, uid: str) -> None:
    with Publisher(srv.url, srv.api_key) as pub:
        ids = [pub.publish([uid], f"n{i}").ids[uid] for i in range(4)]
    calls: list[float] = []

    def token() -> str:
        calls.append(time.monotonic())
        return srv.token(uid, ttl=3600)

    with UserClient(srv.url, token) as u:
        page = u.notifications(limit=2)
        assert [n["title"] for n in page["items"]] == ["n3", "n2"]
        assert page["unreadCount"] == 4 and page["nextCursor"]
        assert u.unread_count() == 4
        read = u.mark_read(ids[:2])
        assert [n["read"] for n in read] == [True, True]
        assert u.unread_count() == 2
        assert u.mark_unread([ids[0]])[0]["read"] is False
        with pytest.raises(TypeError):
            u.mark_read(ids[0])
        assert u.dismiss(ids[3])["unreadCount"] == 2
        snoozed = u.snooze(ids[2], timedelta(hours=1))
        assert snoozed["ids"] == [ids[2]] and snoozed["unreadCount"] == 1
        assert u.read_all()["unreadCount"] == 0
        assert u.notifications(unread=True)["items"] == []
        prefs = u.set_preferences(email_digest="daily", urgent_bypasses_quiet=False)
        assert (prefs["emailDigest"], prefs["urgentBypassesQuiet"]) == ("daily", False)
        assert u.preferences()["emailDigest"] == "daily"
        assert u.digest() is None
        with pytest.raises(NotFoundError):
            u.ack(ids[0])  # not in an incident
    assert len(calls) == 1  # one token for the whole session


async def test_async_user_client_asks_again_after_a_401(srv: ServerProcess,
                                                         uid: str) -> None:
    tokens = iter([mint(uid, secret="wrong-secret-" * 4), srv.token(uid)])
    async with AsyncUserClient(srv.url, lambda: next(tokens)) as u:
        assert await u.unread_count() == 0
    async with AsyncUserClient(srv.url, mint(uid, secret="wrong-secret-" * 4)) as u:
        with pytest.raises(AuthenticationError) as caught:
            await u.unread_count()
    assert caught.value.status == 401


async def test_concurrent_calls_share_one_token(srv: ServerProcess, uid: str) -> None:
    # Before: 20 calls gathered on a fresh client each asked the token function (20
    # tokens), and 20 calls that all got 401 each asked again.
    calls: list[str] = []

    async def token() -> str:
        await asyncio.sleep(0.05)  # a token function that awaits, as a real one does
        calls.append("good")
        return srv.token(uid)

    async with AsyncUserClient(srv.url, token) as u:
        counts = await asyncio.gather(*(u.unread_count() for _ in range(20)))
    assert counts == [0] * 20 and len(calls) == 1

    calls.clear()
    bad = mint(uid, secret="wrong-secret-" * 4)

    async def first_bad() -> str:
        await asyncio.sleep(0.05)
        calls.append("bad" if not calls else "good")
        return bad if calls[-1] == "bad" else srv.token(uid)

    async with AsyncUserClient(srv.url, first_bad) as u:
        counts = await asyncio.gather(*(u.unread_count() for _ in range(20)))
    assert counts == [0] * 20 and calls == ["bad", "good"]


def test_one_exception_family(srv: ServerProcess, uid: str) -> None:
    for empty in ("", " key", "key\n"):
        with pytest.raises(ValueError, match="api_key"):
            Publisher(srv.url, empty)
    with pytest.raises(ValueError, match="token"):
        UserClient(srv.url, "")
    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with Publisher(dead, srv.api_key, retries=1, backoff=0.01) as pub, \
            pytest.raises(TocsinConnectionError) as lost:
        pub.publish([uid], "hi")
    assert time.monotonic() - started < 5
    assert isinstance(lost.value, TocsinError) and "cannot reach" in str(lost.value)
    assert isinstance(lost.value.__cause__, httpx.ConnectError)
    with Publisher(srv.url, srv.api_key) as pub:
        pub.publish([uid], "x", idempotency_key=f"k-{uid}")
        with pytest.raises(ConflictError) as conflict:
            pub.publish([uid], "y", idempotency_key=f"k-{uid}")
        with pytest.raises(ValidationError) as invalid:
            pub.publish([uid], "x" * 201)
    assert (conflict.value.status, invalid.value.field) == (409, "title")
    assert all(isinstance(e, TocsinAPIError) for e in (conflict.value, invalid.value))
    with Publisher(srv.url, "wrong-key-0123456789") as bad, \
            pytest.raises(AuthenticationError):
        bad.stats()


def test_a_token_function_that_returns_no_str_is_refused_before_sending(
        srv: ServerProcess, uid: str) -> None:
    async def async_token() -> str:
        return srv.token(uid)

    # Before: str() of the coroutine (or of None) went out as the bearer token and came
    # back as 401 "Invalid API key or token".
    rec = Recorder()
    wrong: list[Any] = [async_token, lambda: None]  # what mypy would refuse; Python not
    with UserClient(srv.url, wrong[0], transport=rec) as u, \
            pytest.raises(TypeError, match="not coroutine: an async function needs"):
        u.unread_count()
    with UserClient(srv.url, wrong[1], transport=rec) as u, \
            pytest.raises(TypeError, match="must return a str, not NoneType"):
        u.unread_count()
    assert rec.sent == []
    with UserClient(srv.url, lambda: srv.token(uid), transport=rec) as u:
        assert u.unread_count() == 0


def test_a_reply_that_is_not_json_stays_in_the_exception_family(srv: ServerProcess) -> None:
    # /metrics answers 200 with Prometheus text: before, request() let json's
    # JSONDecodeError out, outside TocsinError.
    with Publisher(srv.url, srv.api_key) as pub, \
            pytest.raises(TocsinAPIError) as caught:
        pub.request("GET", "/metrics")
    assert (caught.value.status, caught.value.code) == (200, "invalid_response")
    assert "not JSON (text/plain" in caught.value.message


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_the_same_bad_token_gives_the_same_error_on_both_transports(
        srv: ServerProcess, uid: str, transport: str) -> None:
    bad = mint(uid, secret="wrong-secret-" * 4)
    with pytest.raises(AuthenticationError) as caught:
        async for _ in subscribe(srv.url, bad, transport=transport):  # type: ignore[arg-type]
            pass
    # Before: 401 unauthorized over SSE, 403 "refused" over WebSocket.
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert caught.value.message.startswith("Invalid token")


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_the_token_function_is_called_once_per_token(
        srv: ServerProcess, uid: str, transport: str) -> None:
    """3 s tokens for ~8 s while notifications arrive: one call per token, each ahead of
    the previous token's expiry (before: 3.0, 0.0, 3.0, 0.0 s apart), none lost or
    repeated."""
    calls: list[float] = []

    def fresh() -> str:
        calls.append(time.monotonic())
        return srv.token(uid, ttl=3)

    async def feed() -> None:
        with Publisher(srv.url, srv.api_key) as pub:
            for i in range(16):
                await asyncio.to_thread(pub.publish, [uid], f"n{i}")
                await asyncio.sleep(0.5)

    got: list[Event] = []

    async def read() -> None:
        async for ev in subscribe(srv.url, fresh, last_event_id="0",
                                  transport=transport):  # type: ignore[arg-type]
            got.append(ev)
            if len(got) == 16:
                return

    feeder = asyncio.create_task(feed())
    await asyncio.wait_for(read(), 60)
    await feeder
    assert [e.data["title"] for e in got] == [f"n{i}" for i in range(16)]
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert len(calls) >= 3, calls
    assert all(gap > 1.0 for gap in gaps), gaps  # never twice for one expiry


async def test_websocket_sends_the_token_in_a_message_not_the_url(
        srv: ServerProcess, uid: str) -> None:
    token = srv.token(uid)
    with Publisher(srv.url, srv.api_key) as pub:
        pub.publish([uid], "one")

    async def first() -> Event:
        async for ev in subscribe(srv.url, token, transport="ws", last_event_id="0"):
            return ev
        raise AssertionError("no event")

    ev = await asyncio.wait_for(first(), 30)
    assert ev.notification is not None and ev.notification["title"] == "one"
    assert ev.change is None and ev.digest is None and ev.activity is None
    assert token not in srv.log()  # uvicorn logs each upgrade's path


async def test_reconnects_are_logged_and_reported(caplog: pytest.LogCaptureFixture,
                                                  tmp_path: Path, uid: str) -> None:
    port = free_port()
    statuses: list[Status] = []
    got: list[Event] = []
    server: ServerProcess | None = None

    async def read() -> None:
        async for ev in subscribe(f"http://127.0.0.1:{port}", lambda: server_token(),
                                  last_event_id="0", initial_backoff=0.2, max_backoff=0.5,
                                  on_status=statuses.append):
            got.append(ev)
            return

    def server_token() -> str:
        return mint(uid)

    with caplog.at_level(logging.INFO, logger="tocsin.client"):
        reader = asyncio.create_task(read())
        await eventually(lambda: any(s.state == "retrying" for s in statuses), 20,
                         "the client to retry", interval=0.05)
        server = await asyncio.to_thread(start_server, tmp_path, port=port)
        try:
            with Publisher(server.url, server.api_key) as pub:
                pub.publish([uid], "back")
            await asyncio.wait_for(reader, 30)
        finally:
            server.stop()
    retry = next(s for s in statuses if s.state == "retrying")
    assert retry.reason == "connection refused" and retry.delay > 0 and retry.attempt == 1
    assert statuses[-1].state == "connected"
    assert any(r.name == "tocsin.client" and "retrying in" in r.getMessage()
               and r.getMessage().endswith("connection refused") for r in caplog.records)
    assert got[0].data["title"] == "back"
