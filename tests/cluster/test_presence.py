"""Presence across two real nodes on PostgreSQL + Redis: join, idle and leave seen on
the other node; a SIGKILLed node's members expire within the stated bound
(``EXPIRY_BOUND_FACTOR`` x ``--presence-interval``)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.helpers import channel_url, start_nodes
from tests.support.server import API_KEY, ServerProcess, mint
from tests.support.services import REDIS_URL
from tests.support.sse import open_frames
from tocsin.presence import EXPIRY_BOUND_FACTOR

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

INTERVAL_S = 0.5


async def members(node: ServerProcess, topic: str) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=node.url, timeout=5,
                                 headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        r = await c.get(f"/api/topics/{topic}/presence")
        r.raise_for_status()
        return [(m["user"], m["state"]) for m in r.json()["members"]]


async def test_join_idle_leave_and_sigkill_across_two_nodes(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    nodes = await start_nodes(tmp_path, 2, database=pg_url, broker=channel_url(REDIS_URL),
                              extra=["--presence-interval", f"{INTERVAL_S}s"])
    nodes_to_stop.extend(nodes)
    a, b = nodes
    topic = "ops"
    alice = await open_frames(f"{a.url}/api/topics/{topic}/stream?presence=1",
                              mint("alice", [topic]))
    bob_token = mint("bob", [topic])
    bob = await open_frames(f"{b.url}/api/topics/{topic}/stream?presence=1", bob_token)
    # Join on b, seen on a (stream and route) and vice versa.
    await alice.until(lambda s: ("bob", "active") in s.presence())
    await bob.until(lambda s: ("bob", "active") in s.presence())
    assert await members(a, topic) == await members(b, topic) == [
        ("alice", "active"), ("bob", "active")]
    # Bob's browser reports idle to node a (any node): alice on a and bob's own stream on
    # b hear it.
    async with httpx.AsyncClient(base_url=a.url, timeout=5,
                                 headers={"Authorization": f"Bearer {bob_token}"}) as c:
        assert (await c.put("/api/presence", json={"state": "idle"})).status_code == 200
    await alice.until(lambda s: ("bob", "idle") in s.presence())
    await bob.until(lambda s: ("bob", "idle") in s.presence())
    assert await members(b, topic) == [("alice", "active"), ("bob", "idle")]
    # Bob leaves: gone everywhere after the grace.
    await bob.close()
    await alice.until(lambda s: ("bob", "absent") in s.presence(), within=5)
    assert await members(b, topic) == [("alice", "active")]
    # Carol on b; b is SIGKILLed: a drops her within the bound.
    carol = await open_frames(f"{b.url}/api/topics/{topic}/stream?presence=1",
                              mint("carol", [topic]))
    await alice.until(lambda s: ("carol", "active") in s.presence())
    b.kill()
    killed = time.monotonic()
    bound = EXPIRY_BOUND_FACTOR * INTERVAL_S
    await alice.until(lambda s: ("carol", "absent") in s.presence(), within=bound + 2)
    took = time.monotonic() - killed
    assert took <= bound + 0.5, f"carol expired after {took:.2f}s (bound {bound}s)"
    assert await members(a, topic) == [("alice", "active")]
    await carol.close()
    await alice.close()
