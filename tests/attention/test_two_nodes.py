"""Snooze and the digest with two nodes on one PostgreSQL schema and one Redis
channel, sharing a fake clock (``--test-clock-file``): both timers are claimed by
one node, so a snoozed notification comes back once and a quiet period ends in one
``digest`` event, as seen by live stream readers on either node."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.cluster.helpers import FailoverReader, reader
from tests.escalation.test_escalation import two_nodes
from tests.support.clock import T0, Clock
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
STREAM = "/api/notifications/stream"
__all__ = ["two_nodes"]  # the fixture: two nodes, PostgreSQL + Redis, one fake clock


async def readers(nodes: list[ServerProcess], user: str) -> list[FailoverReader]:
    """A live reader of the user's stream on each node (from the start)."""
    return [await reader(nodes, STREAM, user, first=i, last_id="0") for i in range(2)]


async def settle(rs: list[FailoverReader], n: int, name: str) -> None:
    """Wait for ``n`` ``name`` events on every reader, then a while for any extra."""
    for r in rs:
        await r.wait_for(n, pred=lambda e: e.event == name)
    await asyncio.sleep(1.5)  # > 10 timer polls of both nodes


async def test_snooze_on_one_node_comes_back_once(
        two_nodes: tuple[list[ServerProcess], Clock]) -> None:
    (n1, n2), clock = two_nodes
    user = "s" + uuid.uuid4().hex[:8]
    with n2.publisher() as pub:
        nid = pub.post("/api/notifications", json={"recipients": [user], "type": "t",
                                                    "title": "later"}).json()["ids"][user]
    rs = await readers([n1, n2], user)
    try:
        await settle(rs, 1, "notification")
        until = clock.now + 600_000
        with n1.subscriber(user) as sub:
            r = sub.post(f"/api/notifications/{nid}/snooze", json={"until": until})
            assert r.status_code == 200, r.text
        await settle(rs, 1, "snoozed")
        clock.advance(601)
        await settle(rs, 2, "notification")
        clock.advance(3600)  # later polls: nothing more
        await asyncio.sleep(1)
        for r in rs:
            assert [e.event for e in r.events] == ["notification", "snoozed", "notification"]
            assert r.events[2].data["id"] == nid and not r.events[2].data["read"]
        assert rs[0].ids == rs[1].ids
    finally:
        for r in rs:
            await r.close()
    with n2.subscriber(user) as sub:
        box = sub.get("/api/notifications").json()
        assert [i["id"] for i in box["items"]] == [nid] and box["unreadCount"] == 1


async def test_one_digest_for_silent_notifications_published_through_both_nodes(
        two_nodes: tuple[list[ServerProcess], Clock]) -> None:
    nodes, clock = two_nodes
    user = "d" + uuid.uuid4().hex[:8]
    t0 = T0
    clock.set(t0)
    with nodes[0].subscriber(user) as sub:
        r = sub.put("/api/preferences", json={"dnd": {"until": t0 + 60_000}})
        assert r.status_code == 200, r.text
    rs = await readers(nodes, user)
    try:
        for i in range(6):  # plain (group commit) and idempotent publishes, both nodes
            with nodes[i % 2].publisher() as pub:
                body = {"recipients": [user], "type": "t", "title": f"n{i}"}
                if i >= 4:
                    body["idempotencyKey"] = f"{user}-{i}"
                r = pub.post("/api/notifications", json=body)
                assert r.status_code == 201 and r.json()["silent"] == {user: "dnd"}, r.text
        await settle(rs, 6, "notification")
        clock.set(t0 + 60_000)
        await settle(rs, 1, "digest")
        clock.advance(3600)
        await asyncio.sleep(1)
        for r in rs:
            digests = [e.data for e in r.events if e.event == "digest"]
            assert digests == [{"count": 6, "since": t0, "until": t0 + 60_000}]
            # (after the save's own `preferences` event)
            want = ["preferences"] + ["notification"] * 6 + ["digest"]
            assert [e.event for e in r.events] == want
        assert rs[0].ids == rs[1].ids
    finally:
        for r in rs:
            await r.close()
