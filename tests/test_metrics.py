"""The operator metrics at /metrics: rejections by reason, rate-limit fail-opens, the
publish-to-commit histogram, events by kind, queued bytes (in-process app)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.inprocess import in_process
from tests.support.server import free_port


def value(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


async def test_rejections_by_reason(tmp_path: Path) -> None:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                          rate_topic_posts="1/m:1") as app:
        async with app.client() as anon:
            assert (await anon.get("/api/notifications")).status_code == 401
        async with app.subscriber("u", ["t"]) as sub:
            ev = {"type": "x", "title": "y"}
            assert (await sub.post("/api/topics/t/events", json=ev)).status_code == 201
            assert (await sub.post("/api/topics/t/events", json=ev)).status_code == 429
            assert (await sub.post("/api/topics/t/events", json=ev)).status_code == 429
            assert (await sub.post("/api/topics/other/events", json=ev)).status_code in (403, 429)
            text = (await sub.get("/metrics")).text
    assert value(text, 'tocsin_rejections_total{reason="unauthorized"}') == 1
    assert value(text, 'tocsin_rejections_total{reason="rate_limited"}') >= 2


async def test_publish_latency_and_events_by_kind(tmp_path: Path) -> None:
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}") as app, \
            app.publisher() as pub:
        for _ in range(3):
            r = await pub.post("/api/notifications",
                               json={"recipients": ["a", "b"], "type": "t", "title": "t"})
            assert r.status_code == 201
        await pub.post("/api/topics/t/events", json={"type": "x", "title": "y"})
        text = (await pub.get("/metrics")).text
    assert value(text, "tocsin_publish_write_seconds_count") == 3
    assert value(text, "tocsin_publish_write_seconds_sum") > 0
    assert value(text, 'tocsin_events_total{kind="notification"}') == 6
    assert value(text, 'tocsin_events_total{kind="activity"}') == 1
    for name in ('tocsin_connections{transport="sse"}', "tocsin_streams", "tocsin_broker_up",
                 "tocsin_outbox_bytes", "tocsin_ratelimit_errors_total"):
        value(text, name)


async def test_rate_limiter_failing_open_is_counted(tmp_path: Path) -> None:
    """A Redis broker URL nobody answers: requests go through, each counted."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}", broker_url=dead,
                          rate_reads="1/m:1") as app, app.subscriber("u") as sub:
        codes = [(await sub.get("/api/notifications/unread-count")).status_code
                 for _ in range(3)]
        text = (await sub.get("/metrics")).text
    assert codes == [200, 200, 200]
    assert value(text, "tocsin_ratelimit_errors_total") == 3


async def test_connections_by_transport_and_live_offers(tmp_path: Path) -> None:
    """A real server with one SSE stream, one WebSocket subscription and one waiting
    long-poll: tocsin_connections counts each under its transport; a publish to that
    user is offered live to all three."""
    import asyncio
    import json

    import httpx
    import websockets

    from tests.support.server import start_server

    srv = start_server(tmp_path)
    try:
        tok = srv.token("m-user")
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c, \
                c.stream("GET", "/api/notifications/stream", params={"token": tok}) as sse:
            assert sse.status_code == 200
            ws_url = srv.url.replace("http://", "ws://") + f"/api/ws?token={tok}"
            async with websockets.connect(ws_url) as ws:
                await ws.send(json.dumps({"op": "subscribe", "stream": "inbox"}))
                assert json.loads(await ws.recv())["op"] == "subscribed"
                poll = asyncio.ensure_future(c.get(
                    "/api/notifications/poll", params={"wait": "20"},
                    headers={"Authorization": f"Bearer {tok}"}))
                await asyncio.sleep(0.5)
                text = (await c.get("/metrics")).text
                for transport in ("sse", "ws", "poll"):
                    assert value(text, f'tocsin_connections{{transport="{transport}"}}') \
                        == 1, text
                before = value(text, "tocsin_live_offers_total")
                pub = await c.post("/api/notifications", json={
                    "recipients": ["m-user"], "type": "t", "title": "x"},
                    headers={"Authorization": f"Bearer {srv.api_key}"})
                assert pub.status_code == 201
                assert (await poll).json()["events"][0]["event"] == "notification"
                text = (await c.get("/metrics")).text
                assert value(text, "tocsin_live_offers_total") == before + 3
    finally:
        srv.stop()


async def test_requests_by_route_and_status_and_the_database(tmp_path: Path) -> None:
    """tocsin_requests_total counts every answer by route class and status, a 503
    store_unavailable included; the database's health and pool come with each scrape;
    the process's memory, open files and CPU are there too."""
    from tocsin.errors import StoreUnavailable

    async with in_process(f"sqlite+aiosqlite:///{tmp_path / 'db'}") as app, \
            app.publisher() as pub:
        note = {"recipients": ["a"], "type": "t", "title": "t"}
        assert (await pub.post("/api/notifications", json=note)).status_code == 201
        assert (await pub.post("/api/notifications", json={})).status_code == 400
        assert (await pub.get("/healthz")).status_code == 200
        assert (await pub.get("/api/notifications/poll")).status_code in (400, 403)
        store = app.app.state.tocsin.store

        async def down(*_: object, **__: object) -> None:
            raise StoreUnavailable("the database went away")

        store.publish = down
        r = await pub.post("/api/notifications", json=note)
        assert (r.status_code, r.json()["error"]["code"]) == (503, "store_unavailable")
        text = (await pub.get("/metrics")).text
        again = (await pub.get("/metrics")).text
    assert value(text, 'tocsin_requests_total{route="publish",status="201"}') == 1
    assert value(text, 'tocsin_requests_total{route="publish",status="400"}') == 1
    assert value(text, 'tocsin_requests_total{route="publish",status="503"}') == 1
    assert value(text, 'tocsin_requests_total{route="health",status="200"}') == 1
    assert re.search(r'^tocsin_requests_total\{route="poll",status="40[03]"\} 1', text, re.M)
    assert value(again, 'tocsin_requests_total{route="metrics",status="200"}') == 1
    assert value(text, "tocsin_database_up") == 1
    assert value(text, "tocsin_database_ping_seconds") > 0
    assert value(text, 'tocsin_database_pool_connections{state="size"}') > 0
    assert value(text, 'tocsin_database_pool_connections{state="in_use"}') >= 0
    assert value(text, "process_resident_memory_bytes") > 0
    assert value(text, "process_open_fds") > 0
    assert value(text, "process_cpu_seconds_total") > 0
    for name in ("tocsin_broker_publish_failures_total", "tocsin_sweeps_total",
                 "tocsin_broker_degraded_seconds_total", "tocsin_delivery_lag_seconds_count"):
        value(text, name)
