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
    for name in ("tocsin_connections", "tocsin_streams", "tocsin_broker_up",
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
