"""Attention against real ``tocsin serve`` processes on SQLite and PostgreSQL with a
frozen clock (``--test-clock-file``): the preference routes and their 400s, publisher
defaults, "not delivered" recipients, silent notifications as stored and as sent,
quiet hours in another zone across a DST change, DND, and the digest."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.clock import Clock, clocked_server
from tests.support.server import ServerProcess
from tests.support.sse import replay_to_head
from tests.support.wait import wait_until


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def clocked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[ServerProcess, Clock]]:
    tmp_path = tmp_path_factory.mktemp("attention")
    with clocked_server(request.param, tmp_path) as served:
        yield served


def stream_events(srv: ServerProcess, user: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(id, event, data)`` of the user's whole stream, replayed from the start."""
    return [(e.id, e.event, e.data) for e in replay_to_head(srv.url, srv.token(user))]


def publish(srv: ServerProcess, users: list[str], **kw: Any) -> dict[str, Any]:
    with srv.publisher() as pub:
        r = pub.post("/api/notifications", json={"recipients": users, "type": "comment",
                                                 "title": "t", **kw})
        assert r.status_code == 201, r.text
        return dict(r.json())


def test_preference_routes_defaults_and_400s(clocked: tuple[ServerProcess, Clock]) -> None:
    srv, _ = clocked
    u = "u" + uuid.uuid4().hex[:8]
    with srv.subscriber(u) as sub:
        got = sub.get("/api/preferences").json()
        assert got["types"] == {} and got["quietHours"] is None and got["dnd"] is None
        assert got["urgentBypassesQuiet"] is True and isinstance(got["defaults"], dict)
        prefs = {"types": {"comment": {"channels": ["inbox", "push"], "minPriority": "high"}},
                 "quietHours": {"timezone": "Asia/Tokyo", "start": "22:30", "end": "06:00",
                                "days": ["sat", "mon"]},
                 "dnd": None, "urgentBypassesQuiet": False}
        r = sub.put("/api/preferences", json=prefs)
        assert r.status_code == 200, r.text
        again = sub.get("/api/preferences").json()
        # the channels' fields (tocsin/channels) come back with their defaults filled in
        stored = {"comment": {**prefs["types"]["comment"], "pushMinPriority": "high",
                              "emailAfter": 900}}
        assert again["types"] == stored
        assert again["emailDigest"] == "off"
        assert again["quietHours"]["days"] == ["mon", "sat"]
        assert again["urgentBypassesQuiet"] is False
        bad = [
            ({"types": {"a": {"minPriority": "critical"}}}, "types.a.minPriority"),
            ({"types": {"a": {"channels": ["sms"]}}}, "types.a.channels"),
            ({"quietHours": {"timezone": "Mars/Olympus", "start": "22:00", "end": "07:00"}},
             "quietHours.timezone"),
            ({"quietHours": {"timezone": "UTC", "start": "25:00", "end": "07:00"}},
             "quietHours.start"),
            ({"quietHours": {"timezone": "UTC", "start": "22:00", "end": "7:00"}},
             "quietHours.end"),
            ({"quietHours": {"timezone": "UTC", "start": "22:00", "end": "07:00",
                             "days": ["someday"]}}, "quietHours.days"),
            # issue 21 item 12: [] was taken as every day; omit days for that
            ({"quietHours": {"timezone": "UTC", "start": "22:00", "end": "07:00",
                             "days": []}}, "quietHours.days"),
            ({"types": {"a\x85": {}}}, "types"),  # a type is a name: no C1 (tocsin/text.py)
            ({"dnd": {"until": "soon"}}, "dnd.until"),
            ({"urgentBypassesQuiet": "yes please"}, "urgentBypassesQuiet"),
            ({"surprise": 1}, "surprise"),
        ]
        for body, field in bad:
            r = sub.put("/api/preferences", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"]["field"] == field, (body, r.text)
        assert sub.get("/api/preferences").json()["types"] == stored  # unchanged
        assert sub.put("/api/preferences/defaults", json={"types": {}}).status_code == 403
    # Issue 22 item 3: each change is a `preferences` event in the user's stream, with
    # what GET answers from then on (every tab and device shows it at once); a refused
    # change announces nothing.
    announced = [d for _, name, d in stream_events(srv, u) if name == "preferences"]
    assert len(announced) == 1
    assert announced[0]["preferences"] == again
    with srv.publisher() as pub:
        r = pub.put("/api/preferences/defaults", json={"types": {"x": {"minPriority": "bogus"}}})
        assert r.status_code == 400 and r.json()["error"]["field"] == "types.x.minPriority"
        assert pub.get("/api/preferences").status_code == 403


def test_not_delivered_silent_and_publisher_defaults(
        clocked: tuple[ServerProcess, Clock]) -> None:
    srv, clock = clocked
    clock.set(ms(2026, 1, 7, 12, 0))
    u = uuid.uuid4().hex[:8]
    a, b, c = f"a{u}", f"b{u}", f"c{u}"
    t_off, t_low = f"off{u}", f"low{u}"
    with srv.subscriber(b) as sub:
        assert sub.put("/api/preferences", json={"types": {
            t_off: {"channels": ["interrupt"]},
            t_low: {"channels": ["inbox", "interrupt"], "minPriority": "high"}}}
        ).status_code == 200
    with srv.publisher() as pub:  # defaults: c's own choice (none) -> the default applies
        assert pub.put("/api/preferences/defaults", json={"types": {
            f"quiet{u}": {"channels": ["inbox"]}}}).status_code == 200
    r = publish(srv, [a, b], type=t_off)
    assert set(r["ids"]) == {a} and r["skipped"] == {b: "preferences"} and "silent" not in r
    r = publish(srv, [a, b], type=t_low, priority="medium")
    assert set(r["ids"]) == {a, b} and r["silent"] == {b: "preferences"}
    assert "skipped" not in r
    r = publish(srv, [b], type=t_low, priority="urgent")
    assert r == {"ids": r["ids"]}
    with srv.subscriber(c) as sub:  # c overrides the publisher default
        r = publish(srv, [c], type=f"quiet{u}")
        assert r["silent"] == {c: "preferences"}
        assert sub.put("/api/preferences", json={"types": {f"quiet{u}": {}}}).status_code == 200
        assert "silent" not in publish(srv, [c], type=f"quiet{u}")
        assert sub.get("/api/preferences").json()["defaults"][f"quiet{u}"]["channels"] == ["inbox"]
    with srv.subscriber(b) as sub:
        items = sub.get("/api/notifications").json()["items"]
        assert [(i["type"], i["silent"], i.get("silentReason")) for i in items] == [
            (t_low, False, None), (t_low, True, "preferences")]
    evs = [(n, d) for _, n, d in stream_events(srv, b)]
    assert [(d["type"], d["silent"], d.get("silentReason")) for n, d in evs
            if n == "notification"] == [(t_low, True, "preferences"), (t_low, False, None)]
    with srv.subscriber(a) as sub:  # nobody with preferences: silent false as usual
        assert {i["silent"] for i in sub.get("/api/notifications").json()["items"]} == {False}
    with srv.publisher() as pub:
        pub.put("/api/preferences/defaults", json={"types": {}})


def test_quiet_hours_in_the_users_zone_across_spring_forward(
        clocked: tuple[ServerProcess, Clock]) -> None:
    srv, clock = clocked
    u = "q" + uuid.uuid4().hex[:8]
    with srv.subscriber(u) as sub:
        assert sub.put("/api/preferences", json={"quietHours": {
            "timezone": "Europe/Berlin", "start": "22:00", "end": "07:00"}}).status_code == 200
    # Sat 2026-03-28 21:59 CET: not yet; 22:00 CET = 21:00Z: quiet
    clock.set(ms(2026, 3, 28, 20, 59))
    assert "silent" not in publish(srv, [u])
    clock.set(ms(2026, 3, 28, 21, 0))
    assert publish(srv, [u])["silent"] == {u: "quiet_hours"}
    assert "silent" not in publish(srv, [u], priority="urgent")  # urgent bypasses
    clock.set(ms(2026, 3, 29, 4, 59))  # 06:59 CEST, after the change
    assert publish(srv, [u], priority="high")["silent"] == {u: "quiet_hours"}
    clock.set(ms(2026, 3, 29, 5, 0))  # 07:00 CEST: over (8 hours, not 9)
    assert "silent" not in publish(srv, [u])
    # the window's end fires one digest: 2 arrived silently
    digest = wait_until(lambda: [d for _, n, d in stream_events(srv, u) if n == "digest"])
    assert digest == [{"count": 2, "since": ms(2026, 3, 28, 21, 0),
                       "until": ms(2026, 3, 29, 5, 0)}]
    with srv.subscriber(u) as sub:
        latest = sub.get("/api/preferences/digest").json()["digest"]
        assert latest["count"] == 2 and latest["eventId"]


def test_dnd_silences_and_one_digest_when_it_ends(clocked: tuple[ServerProcess, Clock]) -> None:
    srv, clock = clocked
    u = "d" + uuid.uuid4().hex[:8]
    t0 = ms(2026, 6, 1, 12, 0)
    clock.set(t0)
    with srv.subscriber(u) as sub:
        assert sub.get("/api/preferences/digest").json() == {"digest": None}
        r = sub.put("/api/preferences", json={"dnd": {"until": t0 + 60_000},
                                              "urgentBypassesQuiet": False})
        assert r.json()["dnd"] == {"until": t0 + 60_000, "since": t0}
    for prio in ("low", "high", "urgent"):
        assert publish(srv, [u], priority=prio)["silent"] == {u: "dnd"}
    clock.set(t0 + 30_000)
    with srv.subscriber(u) as sub:  # re-saving the same DND keeps its start
        assert sub.put("/api/preferences", json={"dnd": {"until": t0 + 60_000},
                                                 "urgentBypassesQuiet": False}
                       ).json()["dnd"]["since"] == t0
    clock.set(t0 + 60_000)
    assert "silent" not in publish(srv, [u])
    wait_until(lambda: any(n == "digest" for _, n, _ in stream_events(srv, u)))
    clock.advance(3600)
    time.sleep(1)  # past another timer poll or ten: still one digest
    evs = stream_events(srv, u)
    digests = [(id, d) for id, n, d in evs if n == "digest"]
    assert [d for _, d in digests] == [{"count": 3, "since": t0, "until": t0 + 60_000}]
    ids = [id for id, _, _ in evs]
    assert ids == sorted(ids, key=lambda i: int(i.split("-")[-1]))  # one stream, in order
    # the 4th (not quiet) and the digest race each other: either order
    # (and the two saves, each announced as a `preferences` event)
    assert sorted(n for _, n, _ in evs) == ["digest"] + ["notification"] * 4 + ["preferences"] * 2


def test_a_repeated_idempotent_publish_replies_the_same(
        clocked: tuple[ServerProcess, Clock]) -> None:
    srv, clock = clocked
    u = uuid.uuid4().hex[:8]
    quiet, off, plain = f"i{u}", f"j{u}", f"k{u}"
    t0 = ms(2026, 7, 1, 12, 0)
    clock.set(t0)
    with srv.subscriber(quiet) as sub:
        assert sub.put("/api/preferences", json={"dnd": {"until": t0 + 60_000}}
                       ).status_code == 200
    with srv.subscriber(off) as sub:
        assert sub.put("/api/preferences", json={"types": {"comment": {"channels": []}}}
                       ).status_code == 200
    for group in ({}, {"groupKey": "g" + u}):
        key = f"idem-{u}-{bool(group)}"
        first = publish(srv, [quiet, off, plain], idempotencyKey=key, **group)
        assert first["skipped"] == {off: "preferences"} and first["silent"] == {quiet: "dnd"}
        clock.set(t0 + 120_000)  # DND over: a fresh decision would differ; a replay not
        assert publish(srv, [quiet, off, plain], idempotencyKey=key, **group) == first
        clock.set(t0)


def test_the_digest_leaves_out_what_was_dismissed_before_it(
        clocked: tuple[ServerProcess, Clock]) -> None:
    srv, clock = clocked
    u = "x" + uuid.uuid4().hex[:8]
    t0 = ms(2026, 8, 1, 12, 0)
    clock.set(t0)
    with srv.subscriber(u) as sub:
        assert sub.put("/api/preferences", json={"dnd": {"until": t0 + 60_000}}
                       ).status_code == 200
    ids = [publish(srv, [u], title=f"n{i}")["ids"][u] for i in range(4)]
    with srv.subscriber(u) as sub:  # dismiss one, read one (still counted), before the end
        assert sub.delete(f"/api/notifications/{ids[0]}").status_code == 200
        assert sub.patch(f"/api/notifications/{ids[1]}", json={"read": True}
                         ).status_code == 200
    clock.set(t0 + 60_000)
    digest = wait_until(lambda: [d for _, n, d in stream_events(srv, u) if n == "digest"])
    assert digest == [{"count": 3, "since": t0, "until": t0 + 60_000}]
    with srv.subscriber(u) as sub:  # after the digest: changes nothing
        assert sub.delete(f"/api/notifications/{ids[2]}").status_code == 200
        assert sub.get("/api/preferences/digest").json()["digest"]["count"] == 3
