"""PostgreSQL becomes unreachable for one node (a proxy the test cuts; the shared
server keeps running): publishes through it answer 503 with a clear error and store
nothing, its open streams stay open, and delivery resumes when the database is back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.broker.netproxy import TcpProxy
from tests.cluster.conftest import pg_url_with
from tests.cluster.helpers import (
    assert_exact_sequence,
    channel_url,
    publish_note,
    publisher,
    reader,
    readyz,
    start_nodes,
)
from tests.support.server import ServerProcess, mint
from tests.support.services import PG_HOST, PG_PORT, PG_URL, REDIS_URL
from tests.support.wait import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

INBOX = "/api/notifications/stream"


async def test_database_unreachable_then_back(tmp_path: Path, pg_schema: str,
                                              nodes_to_stop: list[ServerProcess]) -> None:
    with TcpProxy(PG_HOST, PG_PORT) as proxy:
        direct = pg_url_with(pg_schema)
        via = pg_url_with(pg_schema, PG_URL.replace(f"{PG_HOST}:{PG_PORT}",
                                                    f"127.0.0.1:{proxy.port}"))
        assert via != direct
        nodes = await start_nodes(tmp_path, 2, database=[via, direct],
                                  broker=channel_url(REDIS_URL))
        nodes_to_stop.extend(nodes)
        n1, n2 = nodes
        sub = await reader([n1], INBOX, "alice", last_id="0")
        async with publisher(n1.url) as p1, publisher(n2.url) as p2:
            first = await publish_note(p1, "alice", "before")
            await sub.wait_for(1, timeout=5)

            proxy.cut()
            r = await p1.post("/api/notifications", json={
                "recipients": ["alice", "bob"], "type": "t", "title": "during the outage"})
            assert r.status_code == 503, r.text
            err = r.json()["error"]
            assert err["code"] == "store_unavailable" and "database" in err["message"].lower()
            r = await p1.post("/api/topics/ops/events", json={"type": "t", "title": "x"})
            assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
            code, body = await readyz(n1)
            assert code == 503 and body["database"] != "ok", body

            # The node's open stream stays open and still delivers what other nodes store.
            second = await publish_note(p2, "alice", "through node 2")
            await sub.wait_for(2, timeout=5)
            await asyncio.sleep(2.5)  # heartbeats (every 1 s) keep it open
            assert sub.connects == 1, sub.errors

            proxy.restore()

            async def publishes() -> bool:
                r = await p1.post("/api/notifications", json={
                    "recipients": ["alice"], "type": "t", "title": "after",
                    "idempotencyKey": "after-1"})
                return r.status_code == 201
            await eventually(publishes, 10, "publishes through node 1 to work again", 0.2)

            async def ready() -> bool:
                return (await readyz(n1))[0] == 200
            await eventually(ready, 5, "readyz 200 again")
            events = await sub.wait_for(3, timeout=5)
            assert_exact_sequence(events, expected_ids=[1, 2, 3])
            assert [e.data["title"] for e in events] == ["before", "through node 2", "after"]
            assert events[0].data["id"] == first and events[1].data["id"] == second
            assert sub.connects == 1

        # nothing of the failed publish was written, for either recipient
        for user, expected in (("alice", 3), ("bob", 0)):
            async with httpx.AsyncClient(base_url=n2.url, timeout=10, headers={
                    "Authorization": f"Bearer {mint(user)}"}) as c:
                items = (await c.get("/api/notifications")).json()["items"]
            assert len(items) == expected
            assert all(i["title"] != "during the outage" for i in items)
        await sub.close()
