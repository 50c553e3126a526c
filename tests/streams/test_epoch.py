"""A database replaced behind a running server: every stream position carries its
stream's epoch, so clients holding ids from the old database — connected or
reconnecting, and even with an id BELOW the new head — get ``reset``, never a suffix
of somebody else's history."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess, mint, start_server
from tests.support.services import drop_pg_schema, need_postgres, pg_schema_url
from tests.support.sse import open_stream
from tocsin.client import subscribe
from tocsin.ids import parse_position
from tocsin.store import NewNotification, store_from_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    need_postgres()
    schema = "t_" + uuid.uuid4().hex[:12]
    url = pg_schema_url(schema)
    # A quick safety sweep (every 10 x degraded-poll) so the test need not wait 10 s.
    srv = start_server(tmp_path, database=url, extra=["--degraded-poll", "0.2s"])
    try:
        yield srv, url
    finally:
        srv.stop()
        asyncio.run(drop_pg_schema(schema))


async def replace_database(url: str, user: str, count: int) -> None:
    """Drop every table and build the schema afresh (a wiped or swapped database at the
    same address), then write ``count`` notifications for ``user`` into it."""
    schema = url.rpartition("schema=")[2]
    await drop_pg_schema(schema)
    store = store_from_url(url)
    await store.open()
    try:
        for i in range(count):
            await store.publish("p", [user], NewNotification(type="t", title=f"new {i}"))
    finally:
        await store.close()


async def test_replaced_database_resets_connected_and_reconnecting_clients(
        pg_server: tuple[ServerProcess, str]) -> None:
    srv, url = pg_server
    user = "epoch-" + uuid.uuid4().hex[:6]
    stream_url = srv.url + "/api/notifications/stream"
    with srv.publisher() as pub:
        for i in range(6):
            assert pub.post("/api/notifications", json={
                "recipients": [user], "type": "t", "title": f"old {i}"}).status_code == 201
    token = mint(user)
    live = await open_stream(stream_url, token, last_event_id=None)
    old = await open_stream(stream_url, token, last_event_id="0")
    events = await old.wait_for(6)
    old_ids = [e.id for e in events]
    old_epoch = parse_position(old_ids[0]).epoch
    assert old_epoch and all(parse_position(i).epoch == old_epoch for i in old_ids)
    await old.close()

    await replace_database(url, user, count=10)  # new head 10: above every old seq

    # Connected: the server notices the new epoch (its periodic sweep) and resets.
    got = await live.wait_for(1, timeout=15)
    assert got[0].event == "reset", got
    new_head = parse_position(got[0].data["lastEventId"])
    assert new_head.epoch != old_epoch and new_head.seq == 10
    await live.close()

    # Reconnecting with an id below the new head (old seq 3 < 10): reset, not 4..10.
    back = await open_stream(stream_url, token, last_event_id=old_ids[2])
    got = await back.wait_for(1)
    await asyncio.sleep(0.3)
    assert [e.event for e in back.events] == ["reset"]
    assert got[0].data["lastEventId"] == str(new_head)
    await back.close()

    # The Python client passes the reset on and resumes from the new position.
    agen = subscribe(srv.url, token, last_event_id=old_ids[4])
    first = await asyncio.wait_for(agen.__anext__(), 10)
    assert first.event == "reset" and first.id == str(new_head)
    with srv.publisher() as pub:
        pub.post("/api/notifications", json={"recipients": [user], "type": "t", "title": "n"})
    second = await asyncio.wait_for(agen.__anext__(), 10)
    await agen.aclose()
    assert second.event == "notification" and parse_position(second.id).seq == 11
    assert second.data["title"] == "n"
