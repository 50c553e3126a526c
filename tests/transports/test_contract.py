"""One contract, three transports: SSE, WebSocket and long-poll give the same ids, the
same events in the same order and the same ``reset``, on SQLite and PostgreSQL.

Concurrent publishers write to one inbox and one topic while readers of the
transport under test follow live, drop and resume at random points (each resume
must return exactly the next ids), and positions that cannot be continued (never
issued, another epoch, past the head) get one ``reset`` to the head.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable

import httpx
import pytest
import websockets

from tests.support.load import (
    assert_exact_suffix,
    check_suffixes,
    hop,
    publish_mixed,
    resume_at_random,
)
from tests.support.server import ServerProcess
from tests.support.sse import Received
from tests.transports.clients import TRANSPORTS, Reader, open_reader

PUBLISHERS = 6
PER_PUBLISHER = 20
TOPIC_EVERY = 3

pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)


async def _hop(transport: str, srv: ServerProcess, tok: str, stream: str, total: int,
               stop: asyncio.Event) -> list[Received]:
    """Drop and resume from the last id held, over and over, until all arrived."""
    return await hop(lambda last: open_reader(transport, srv.url, tok, stream, last),
                     total, stop, within=60)


async def test_concurrent_publishers_and_random_resumes(
    server: ServerProcess, uid: str, transport: str
) -> None:
    user, topic = f"c-{uid}", f"c-{uid}"
    tok = server.token(user, topics=[topic])
    total_user = PUBLISHERS * PER_PUBLISHER
    total_topic = PUBLISHERS * len(range(0, PER_PUBLISHER, TOPIC_EVERY))
    live: list[Reader] = [await open_reader(transport, server.url, tok, "inbox", "0"),
                          await open_reader(transport, server.url, tok, "inbox", None)]
    live_topic = await open_reader(transport, server.url, tok, f"topic:{topic}", "0")
    stop = asyncio.Event()
    hoppers = [asyncio.create_task(_hop(transport, server, tok, "inbox", total_user, stop)),
               asyncio.create_task(_hop(transport, server, tok, f"topic:{topic}",
                                        total_topic, stop))]

    def resumer(stream: str, reference: Reader) -> Awaitable[list[tuple[int, int]]]:
        return resume_at_random(
            lambda last: open_reader(transport, server.url, tok, stream, last),
            reference, 5, 0.15)

    resumers = [asyncio.create_task(resumer("inbox", live[0])),
                asyncio.create_task(resumer(f"topic:{topic}", live_topic))]
    acked: list[str] = []
    try:
        await asyncio.gather(*(publish_mixed(server, w, user, topic, acked,
                                             PER_PUBLISHER, TOPIC_EVERY)
                               for w in range(PUBLISHERS)))
        stop.set()
        events = await live[0].wait_for(total_user, timeout=30)
        assert_exact_suffix(events, 0, total_user)
        assert {e.data["id"] for e in events} == set(acked)  # acknowledged = delivered
        # The live-only reader started at the head then: a strict suffix, no gaps.
        tail = live[1].ids
        assert tail == list(range(total_user - len(tail) + 1, total_user + 1)) or \
            tail == list(range(tail[0], tail[0] + len(tail))), tail[:10]
        assert_exact_suffix(await live_topic.wait_for(total_topic, timeout=30), 0, total_topic)
        hopped_user, hopped_topic = await asyncio.gather(*hoppers)
        assert_exact_suffix(hopped_user, 0, total_user)
        assert_exact_suffix(hopped_topic, 0, total_topic)
        assert [len(c) for c in await asyncio.gather(*resumers)] == [5, 5]
        # After the fact: resumes at random points return the exact suffix, payload
        # for payload, identical to what the live reader got.
        await check_suffixes(lambda last: open_reader(transport, server.url, tok, "inbox", last),
                             live[0].events[:total_user], 4)
    finally:
        for t in [*hoppers, *resumers]:
            t.cancel()
        for r in [*live, live_topic]:
            await r.close()


@pytest.mark.parametrize("kind", ["never-issued", "other-epoch", "past-head", "garbage"])
async def test_a_position_that_cannot_continue_gets_one_reset_to_the_head(
    server: ServerProcess, uid: str, transport: str, kind: str
) -> None:
    user = f"r-{uid}"
    tok = server.token(user)
    with server.publisher() as pub:
        for i in range(3):
            pub.post("/api/notifications", json={"recipients": [user], "type": "t",
                                                 "title": str(i)}).raise_for_status()
    with server.subscriber(user) as sub:
        ids = [sub.get("/api/notifications").json()["lastEventId"]]
    epoch, head = ids[-1].split("-")
    since = {"never-issued": "zz99-2", "other-epoch": f"{epoch[::-1]}x-1",
             "past-head": f"{epoch}-{int(head) + 5}", "garbage": "not an id"}[kind]
    r = await open_reader(transport, server.url, tok, "inbox", since)
    try:
        [reset] = await r.wait_for(1)
        assert (reset.event, reset.id, reset.data) == ("reset", ids[-1],
                                                       {"lastEventId": ids[-1]})
        with server.publisher() as pub:
            pub.post("/api/notifications", json={"recipients": [user], "type": "t",
                                                 "title": "after"}).raise_for_status()
        events = await r.wait_for(2)
        # Live on from the head: the next id.
        assert [e.id for e in events] == [ids[-1], f"{epoch}-{int(head) + 1}"]
    finally:
        await r.close()


async def test_an_expiring_token_ends_with_a_distinct_signal(
    server: ServerProcess, uid: str, transport: str
) -> None:
    tok = server.token(f"x-{uid}", ttl=2)
    if transport == "sse":
        async with httpx.AsyncClient(timeout=15) as c, c.stream(
                "GET", server.url + "/api/notifications/stream",
                headers={"Authorization": f"Bearer {tok}"}) as resp:
            text = b"".join([chunk async for chunk in resp.aiter_bytes()]).decode()
        assert text.endswith("event: expired\ndata: {}\n\n"), text[-200:]
    elif transport == "ws":
        async with websockets.connect(server.url.replace("http", "ws") + "/api/ws") as ws:
            await ws.send(json.dumps({"op": "auth", "token": tok}))
            await ws.send(json.dumps({"op": "subscribe", "stream": "inbox"}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 15)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    else:
        async with httpx.AsyncClient(timeout=15) as c:
            r = await c.get(server.url + "/api/notifications/poll", params={"wait": 25},
                            headers={"Authorization": f"Bearer {tok}"})
            assert r.status_code == 200 and r.json()["expired"] is True, r.text
            await asyncio.sleep(max(0.0, 2.2 - 0))
            r = await c.get(server.url + "/api/notifications/poll",
                            headers={"Authorization": f"Bearer {tok}"})
            assert r.status_code == 401, r.text
