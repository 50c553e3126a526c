"""The Python client against a real server."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.ids import seq_of
from tests.support.server import ServerProcess
from tocsin.client import Publisher, TocsinAPIError, subscribe


def test_publisher_publish_event_token_and_errors(sqlite_server: ServerProcess) -> None:
    with Publisher(sqlite_server.url, sqlite_server.api_key) as pub:
        ids = pub.publish(["alice"], "Hi", priority="high", group_key="g1",
                          data={"a": 1}, idempotency_key="k1")
        assert pub.publish(["alice"], "Hi", priority="high", group_key="g1",
                           data={"a": 1}, idempotency_key="k1") == ids
        with pytest.raises(TocsinAPIError) as conflict:
            pub.publish(["alice"], "Other", idempotency_key="k1")
        assert conflict.value.status == 409 and conflict.value.code == "conflict"
        ev = pub.post_event("team", "Deployed", actor="ci")
        assert seq_of(ev["id"]) == 1 and ev["actor"] == "ci"
        tok = pub.token("alice", ["team"])
        with pytest.raises(TocsinAPIError) as err:
            pub.publish(["alice"], "x" * 201)
        assert err.value.status == 400 and err.value.code == "too_long"
        assert err.value.field == "title"
    with sqlite_server.subscriber("alice") as c:
        item = c.get("/api/notifications").json()["items"][0]
    assert item["groupKey"] == "g1" and item["data"] == {"a": 1}
    assert tok.count(".") == 2


async def test_subscribe_resumes_across_a_server_restart(sqlite_server: ServerProcess,
                                                         tmp_path: object) -> None:
    from tests.support.server import start_server

    srv = sqlite_server
    token = srv.token("bob")
    got: list[str] = []

    async def consume() -> None:
        async for ev in subscribe(srv.url, token, last_event_id="0"):
            got.append(ev.id)
            if len(got) == 6:
                return

    task = asyncio.create_task(consume())
    with Publisher(srv.url, srv.api_key) as pub:
        for i in range(3):
            pub.publish(["bob"], f"n{i}")
    for _ in range(100):
        if len(got) == 3:
            break
        await asyncio.sleep(0.05)
    # Restart the server on the same port and database: the client resumes by itself.
    srv.stop()
    db = srv.args[srv.args.index("--database") + 1]
    from pathlib import Path

    again = start_server(Path(str(tmp_path)), database=db, port=srv.port)
    try:
        with Publisher(again.url, again.api_key) as pub:
            for i in range(3, 6):
                pub.publish(["bob"], f"n{i}")
        await asyncio.wait_for(task, 30)
    finally:
        again.stop()
    assert [seq_of(i) for i in got] == [1, 2, 3, 4, 5, 6]
    assert len({i.rpartition("-")[0] for i in got}) == 1  # one epoch throughout
