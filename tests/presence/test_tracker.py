"""Presence trackers of several "nodes" in one process on a memory:// channel: joins
and leaves across nodes, one member per user however many connections, the leave
grace, reported states, snapshots for a late node, a silent node's expiry, and the
broker traffic (per batch of real changes and per node heartbeat, never per
connection)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from tests.support.wait import eventually
from tocsin.broker.memory import MemoryBroker
from tocsin.presence import EXPIRY_BOUND_FACTOR, Change, Presence

INTERVAL = 0.2
GRACE = 0.15


class Node:
    def __init__(self, channel: str, name: str, **kw: float) -> None:
        self.broker = MemoryBroker(f"memory://{channel}")
        self.changes: list[Change] = []
        self.sent: list[bytes] = []
        self.p = Presence(self.broker, name, self.changes.append,
                          interval_s=kw.get("interval", INTERVAL), grace_s=kw.get("grace", GRACE))
        original = self.broker.publish

        async def counting(message: bytes) -> None:
            self.sent.append(message)
            await original(message)

        self.broker.publish = counting  # type: ignore[method-assign]

    async def start(self) -> None:
        await self.broker.start(self.p.on_message, lambda up: None)
        await self.p.start()

    async def kill(self) -> None:
        """Vanish without a goodbye (as a SIGKILLed process would)."""
        assert self.p._loop_task is not None
        self.p._loop_task.cancel()
        await self.broker.close()

    def kinds(self) -> list[str]:
        return [orjson.loads(m)["pr"] for m in self.sent]


@pytest.fixture
async def cluster() -> AsyncIterator[Callable[[str], Node]]:
    channel = uuid.uuid4().hex
    nodes: list[Node] = []

    def make(name: str) -> Node:
        n = Node(channel, name)
        nodes.append(n)
        return n

    yield make
    for n in nodes:
        await n.p.stop()
        await n.broker.close()


def users(node: Node, stream: str = "t:room") -> list[tuple[str, str]]:
    return [(str(m["user"]), str(m["state"])) for m in node.p.members(stream)]


async def test_join_leave_across_nodes_and_one_member_per_user(
        cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    for _ in range(3):  # three tabs of alice on node a
        a.p.joined("t:room", "alice")
    b.p.joined("t:room", "alice")  # and one on node b
    await eventually(lambda: users(b) == [("alice", "active")]
                     and users(a) == [("alice", "active")])
    joins = [c for c in a.changes + b.changes if c.state != "absent"]
    assert [(c.stream, c.user) for c in joins] == [("t:room", "alice")] * 2  # once per node
    for _ in range(3):
        a.p.left("t:room", "alice")
    await asyncio.sleep(GRACE + 0.2)
    assert users(b) == [("alice", "active")]  # still on b
    assert not [c for c in a.changes + b.changes if c.state == "absent"]
    b.p.left("t:room", "alice")
    await eventually(lambda: users(a) == [] and users(b) == [])
    assert [c.state for c in a.changes] == ["active", "absent"]
    assert [c.state for c in b.changes] == ["active", "absent"]


async def test_reload_within_grace_does_not_flap(cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    a.p.joined("t:room", "bob")
    await eventually(lambda: users(b) == [("bob", "active")])
    deltas = a.kinds().count("d")
    a.p.left("t:room", "bob")
    await asyncio.sleep(GRACE / 3)
    a.p.joined("t:room", "bob")  # the reloaded page is back
    await asyncio.sleep(GRACE + 0.2)
    assert [c.state for c in b.changes] == ["active"]
    assert a.kinds().count("d") == deltas  # nothing crossed the broker


async def test_reload_onto_another_node_does_not_flap(cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    a.p.joined("t:room", "bob")
    await eventually(lambda: users(b) == [("bob", "active")])
    a.p.left("t:room", "bob")
    b.p.joined("t:room", "bob")  # a load balancer sent the reload to b
    await asyncio.sleep(GRACE + 0.3)
    assert users(a) == users(b) == [("bob", "active")]
    assert [c.state for c in a.changes] == ["active"]
    assert [c.state for c in b.changes] == ["active"]


async def test_states_reach_every_node(cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    a.p.joined("t:room", "carol")
    a.p.joined("t:other", "carol")
    await eventually(lambda: users(b) == [("carol", "active")])
    state, since = b.p.report("carol", "idle")  # the PUT landed on b
    assert state == "idle" and since > 0
    await eventually(lambda: users(a) == [("carol", "idle")])
    assert {(c.stream, c.state) for c in a.changes if c.state == "idle"} == {
        ("t:room", "idle"), ("t:other", "idle")}
    assert b.p.report("carol", "idle")[1] == since  # same state again: no news
    assert await a.p.active(["carol", "nobody"]) in (
        {"carol": None, "nobody": None}, {"carol": False, "nobody": False})
    await asyncio.sleep(INTERVAL)
    assert await a.p.active(["carol", "nobody"]) == {"carol": False, "nobody": False}
    b.p.report("carol", "active")
    await eventually(lambda: a.p.is_active("carol"))
    assert a.p.user("carol")[0] == "active" and a.p.user("carol")[2] == ["t:other", "t:room"]


async def test_late_node_gets_a_snapshot(cluster: Callable[[str], Node]) -> None:
    a = cluster("a")
    await a.start()
    a.p.joined("t:room", "dave")
    a.p.report("dave", "idle")
    await asyncio.sleep(0.1)
    c = cluster("c")
    await c.start()
    await eventually(lambda: users(c) == [("dave", "idle")])


class ClusterBroker(MemoryBroker):
    """A memory channel that says it crosses processes, as Redis does."""

    local = False


async def test_a_starting_node_knows_its_peers_within_one_interval() -> None:
    """Issue 21 #13: a node of a cluster asks every peer for a snapshot as it starts,
    so it learns their entries at once (before: at the peer's next heartbeat, up to an
    interval later) and trusts its table one interval after the start (before: 1.5);
    on a local broker it trusts it from the start."""
    channel, interval = uuid.uuid4().hex, 4.0
    a, b = Node(channel, "a", interval=interval), Node(channel, "b", interval=interval)
    for n in (a, b):
        n.broker = ClusterBroker(f"memory://{channel}")
        n.p.broker = n.broker
    try:
        await a.start()
        a.p.joined("t:room", "erin")
        a.p.report("erin", "active")
        await asyncio.sleep(0.2)  # a's delta went out before b exists
        started = time.monotonic()
        await b.start()
        assert not b.p.ready and (await b.p.active(["erin"])) == {"erin": None}
        await eventually(lambda: users(b) == [("erin", "active")], within=1.0)
        assert 0.9 * interval < b.p.unknown_for() + (time.monotonic() - started) \
            <= interval + 0.01
        await eventually(lambda: b.p.ready, within=interval + 0.5)
        assert time.monotonic() - started < 1.2 * interval  # before: 1.5 intervals
        assert (await b.p.active(["erin"])) == {"erin": True}
    finally:
        for n in (a, b):
            await n.p.stop()
            await n.broker.close()
    lone = Node(uuid.uuid4().hex, "lone", interval=interval)  # memory://: local
    await lone.start()
    try:
        assert lone.p.ready and lone.p.unknown_for() == 0
        assert (await lone.p.active(["erin"])) == {"erin": False}
    finally:
        await lone.p.stop()
        await lone.broker.close()


async def test_a_silent_node_expires_within_the_bound(cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    a.p.joined("t:room", "erin")
    await eventually(lambda: users(b) == [("erin", "active")])
    await a.kill()
    t0 = time.monotonic()
    await eventually(lambda: users(b) == [], within=EXPIRY_BOUND_FACTOR * INTERVAL + 1)
    took = time.monotonic() - t0
    assert took <= EXPIRY_BOUND_FACTOR * INTERVAL + 0.1
    assert b.changes[-1].state == "absent"


async def test_a_lost_delta_is_repaired_by_the_heartbeat_count(
        cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    handler = b.broker._handler
    b.broker._handler = None  # b misses what a says next
    a.p.joined("t:room", "frank")
    await asyncio.sleep(0.1)
    b.broker._handler = handler
    assert users(b) == []
    await eventually(lambda: users(b) == [("frank", "active")], within=3 * INTERVAL + 1)


async def test_broker_traffic_is_per_change_batch_not_per_connection(
        cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    await asyncio.sleep(0.05)
    a.sent.clear()
    for i in range(1000):  # a reconnect storm: 1000 users, 3 tabs each
        for _ in range(3):
            a.p.joined("t:room", f"u{i}")
    await eventually(lambda: len(b.p.members("t:room")) == 1000)
    # One message (a delta, or the full snapshot b's start asked for, sent together).
    assert len([k for k in a.kinds() if k in ("d", "f")]) == 1
    a.sent.clear()
    await asyncio.sleep(INTERVAL * 5)
    # Nothing but heartbeats while nothing changes: about one per interval.
    assert set(a.kinds()) <= {"h"} and 3 <= len(a.sent) <= 7


async def test_graceful_stop_says_goodbye(cluster: Callable[[str], Node]) -> None:
    a, b = cluster("a"), cluster("b")
    await a.start()
    await b.start()
    a.p.joined("t:room", "gina")
    await eventually(lambda: users(b) == [("gina", "active")])
    await a.p.stop()
    await eventually(lambda: users(b) == [], within=GRACE + INTERVAL + 0.5)
