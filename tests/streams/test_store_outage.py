"""A stream opened while the database is unreachable is still answered (200, retry,
pings) and settles its position and delivers as soon as the database is back."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from tests.broker.netproxy import TcpProxy
from tests.support.server import start_server
from tests.support.services import (
    PG_HOST,
    PG_PORT,
    drop_pg_schema,
    need_postgres,
    pg_schema_url,
)
from tests.support.sse import open_stream


async def test_new_stream_during_database_outage(tmp_path: Path) -> None:
    need_postgres()
    schema = "t_" + uuid.uuid4().hex[:12]
    with TcpProxy(PG_HOST, PG_PORT) as proxy:
        url = pg_schema_url(schema).replace(f"{PG_HOST}:{PG_PORT}",
                                             f"127.0.0.1:{proxy.port}")
        srv = start_server(tmp_path, database=url, extra=["--heartbeat", "1s"])
        try:
            with srv.publisher() as c:
                for i in range(2):
                    assert c.post("/api/notifications", json={
                        "recipients": ["dora"], "type": "t", "title": f"n{i}"}).status_code == 201
            with srv.subscriber("dora") as c:
                first = c.get("/api/notifications").json()["items"][-1]["eventId"]
            proxy.cut()
            s = await open_stream(srv.url + "/api/notifications/stream", srv.token("dora"),
                                  first)
            try:
                assert s.retry == 3000 or s.retry is None  # headers arrived: "connected"
                await asyncio.sleep(2.5)
                assert s.events == [] and not s.closed_by_server
                proxy.restore()
                async with httpx.AsyncClient(base_url=srv.url, timeout=10, headers={
                        "Authorization": f"Bearer {srv.api_key}"}) as c:
                    for _ in range(50):
                        r = await c.post("/api/notifications", json={
                            "recipients": ["dora"], "type": "t", "title": "after",
                            "idempotencyKey": "after"})
                        if r.status_code == 201:
                            break
                        await asyncio.sleep(0.2)
                    assert r.status_code == 201, r.text
                events = await s.wait_for(2, timeout=10)
                assert s.ids == [2, 3]
                assert [e.data["title"] for e in events] == ["n1", "after"]
            finally:
                await s.close()
        finally:
            srv.stop()
            await drop_pg_schema(schema)
