"""The SSE stream over real sockets: framing, live events, resume, reset, liveness."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx

from tests.support.ids import with_seq
from tests.support.server import ServerProcess
from tests.support.sse import open_stream
from tests.support.wait import eventually


def publish(srv: ServerProcess, user: str, title: str = "hi", **kw: object) -> str:
    with srv.publisher() as c:
        r = c.post("/api/notifications",
                   json={"recipients": [user], "type": "comment", "title": title, **kw})
        assert r.status_code == 201, r.text
        return str(r.json()["ids"][user])


def head_id(srv: ServerProcess, user: str) -> str:
    """The user's newest event id (with its epoch), from the inbox listing."""
    with srv.subscriber(user) as c:
        return str(c.get("/api/notifications", params={"limit": 1}).json()["lastEventId"])


def stream_url(srv: ServerProcess) -> str:
    return srv.url + "/api/notifications/stream"


def connections(srv: ServerProcess) -> int:
    with srv.publisher() as c:
        return int(c.get("/api/stats").json()["connections"])


def raw_stream_head(srv: ServerProcess, user: str, extra_headers: str = "",
                    query: str = "", read_for: float = 1.5) -> bytes:
    """Read the first bytes of a stream over a plain socket (no client library)."""
    tok = srv.token(user)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(f"GET /api/notifications/stream?token={tok}{query} HTTP/1.1\r\n"
                  f"Host: x\r\nAccept: text/event-stream\r\n{extra_headers}\r\n".encode())
        data = b""
        deadline = time.monotonic() + read_for
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            data += chunk
        return data


def test_headers_retry_first_and_heartbeat(server: ServerProcess, uid: str) -> None:
    data = raw_stream_head(server, uid, read_for=2.5)  # the server pings every 1 s here
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"200 OK" in head
    lower = head.lower()
    assert b"content-type: text/event-stream" in lower
    assert b"cache-control: no-cache" in lower and b"x-accel-buffering: no" in lower
    assert b"retry: 3000\n\n" in body
    assert body.index(b"retry:") < body.index(b": ping\n\n")


async def test_every_state_change_is_an_event(server: ServerProcess, uid: str) -> None:
    u = f"tabs-{uid}"
    tab1 = await open_stream(stream_url(server), server.token(u))
    tab2 = await open_stream(stream_url(server), server.token(u))
    try:
        a = publish(server, u, "a")
        b = publish(server, u, "b", type="like")
        with server.subscriber(u) as c:
            c.patch(f"/api/notifications/{a}", json={"read": True})
            c.patch(f"/api/notifications/{a}", json={"read": False})
            c.post("/api/notifications/read-all", json={"type": "like"})
            c.delete(f"/api/notifications/{a}")
        for tab in (tab1, tab2):
            evs = await tab.wait_for(6)
            assert [e.event for e in evs] == ["notification", "notification", "read", "unread",
                                              "read_all", "deleted"]
            assert tab.ids == [1, 2, 3, 4, 5, 6]
            assert evs[0].data["id"] == a and evs[1].data["id"] == b
            assert evs[2].data == {"ids": [a], "unreadCount": 1}
            assert evs[3].data == {"ids": [a], "unreadCount": 2}
            assert evs[4].data == {"upTo": with_seq(evs[0].id, 4), "unreadCount": 1,
                                   "type": "like"}
            assert evs[5].data == {"ids": [a], "unreadCount": 0}
    finally:
        await tab1.close()
        await tab2.close()


async def test_resume_with_header_or_query_gets_exactly_the_rest(
    server: ServerProcess, uid: str
) -> None:
    u = f"resume-{uid}"
    for i in range(6):
        publish(server, u, f"n{i}")
    second = with_seq(head_id(server, u), 2)
    for use_header in (True, False):
        s = await open_stream(stream_url(server), server.token(u), second,
                              use_header=use_header)
        try:
            await s.wait_for(4)
            publish(server, u, "live") if use_header else None
            if use_header:
                await s.wait_for(5)
                assert s.ids == [3, 4, 5, 6, 7]
            else:
                assert s.ids == [3, 4, 5, 6, 7]  # "live" from the first round, replayed
            assert [e.event for e in s.events] == ["notification"] * len(s.events)
        finally:
            await s.close()


async def test_header_wins_over_query(server: ServerProcess, uid: str) -> None:
    """EventSource keeps the URL's ?lastEventId but sends a newer Last-Event-ID header."""
    u = f"both-{uid}"
    for i in range(4):
        publish(server, u, f"n{i}")
    tok = server.token(u)
    head = head_id(server, u)
    async with httpx.AsyncClient(timeout=5) as c, c.stream(
        "GET", stream_url(server), params={"token": tok, "lastEventId": with_seq(head, 1)},
        headers={"Last-Event-ID": with_seq(head, 3)},
    ) as r:
        text = ""
        async for chunk in r.aiter_text():
            text += chunk
            if f"id: {head}" in text:
                break
    assert f"id: {with_seq(head, 2)}\n" not in text
    assert f"id: {with_seq(head, 3)}\n" not in text and f"id: {head}\n" in text


async def test_no_last_event_id_means_live_only(server: ServerProcess, uid: str) -> None:
    u = f"live-{uid}"
    publish(server, u, "old")
    s = await open_stream(stream_url(server), server.token(u))
    try:
        publish(server, u, "new")
        evs = await s.wait_for(1)
        assert [e.data["title"] for e in evs] == ["new"] and s.ids == [2]
    finally:
        await s.close()


def test_unknown_or_garbage_id_gets_one_reset(server: ServerProcess, uid: str) -> None:
    u = f"reset-{uid}"
    publish(server, u)
    head = head_id(server, u)
    # Never issued, garbage, non-ASCII digits, a bare seq (no epoch: an id from before
    # epochs), and an id of another epoch below the head.
    for bad in (with_seq(head, 999), "abc", "-4", "\u00b2", "1", "0123abcd-1"):
        body = raw_stream_head(server, u, extra_headers=f"Last-Event-ID: {bad}\r\n",
                               read_for=0.8)
        assert body.count(b"event: reset") == 1, (bad, body)
        assert (f'id: {head}\nevent: reset\ndata: {{"lastEventId":"{head}"}}'.encode()
                in body), (bad, body)


def test_id_older_than_retention_gets_reset(tmp_path: object, uid: str) -> None:
    from pathlib import Path

    from tests.support.server import start_server

    srv = start_server(Path(str(tmp_path)), extra=["--retention", "1s"])
    try:
        for i in range(3):
            publish(srv, uid, f"n{i}")
        time.sleep(2.5)  # the pruner runs every retention/4 (at least 1 s)
        publish(srv, uid, "after")
        body = raw_stream_head(srv, uid, extra_headers="Last-Event-ID: 1\r\n", read_for=0.8)
        assert b"event: reset" in body and b"n1" not in body
        with srv.subscriber(uid) as c:  # the inbox itself outlives the replay log
            assert len(c.get("/api/notifications").json()["items"]) == 4
    finally:
        srv.stop()


async def test_disconnects_release_the_connection_promptly(server: ServerProcess, uid: str) -> None:
    base = connections(server)
    streams = [await open_stream(stream_url(server), server.token(f"{uid}-{i}"))
               for i in range(20)]
    assert connections(server) == base + 20
    for s in streams:
        await s.close()
    await eventually(lambda: connections(server) == base, 5,
                     lambda: f"{base} connections, not {connections(server)}", 0.05)


async def test_stream_ends_when_the_token_expires(server: ServerProcess, uid: str) -> None:
    from tests.support.sse import StreamReader

    s = await StreamReader(stream_url(server), server.token(uid, ttl=2)).start()
    try:
        await asyncio.sleep(3.5)
        assert s.closed_by_server
    finally:
        await s.close()


async def test_topic_stream_and_resume(server: ServerProcess, uid: str) -> None:
    topic = f"feed-{uid}"
    url = f"{server.url}/api/topics/{topic}/stream"
    tok = server.token(f"viewer-{uid}", topics=["feed-*"])
    s = await open_stream(url, tok)
    try:
        with server.publisher() as pub:
            for i in range(3):
                pub.post(f"/api/topics/{topic}/events", json={"type": "x", "title": f"e{i}"})
        evs = await s.wait_for(3)
        assert [e.event for e in evs] == ["activity"] * 3 and s.ids == [1, 2, 3]
        assert evs[2].data["title"] == "e2" and evs[2].data["topic"] == topic
    finally:
        await s.close()
    again = await open_stream(url, tok, evs[0].id)
    try:
        await again.wait_for(2)
        assert again.ids == [2, 3]
    finally:
        await again.close()
    denied = httpx.get(url, params={"token": server.token(uid, topics=["other"])})
    assert denied.status_code == 403


async def test_live_only_clients_get_everything_published_after_they_connected(
    server: ServerProcess, uid: str
) -> None:
    """A client without Last-Event-ID is "connected" once it has the headers; anything
    published from then on is its to receive, even while the server is still reading
    the stream's head behind those headers (many fresh users connecting at once)."""
    for round_ in range(3):
        users = [f"fresh-{uid}-{round_}-{i}" for i in range(60)]
        streams = await asyncio.gather(*(open_stream(stream_url(server), server.token(u))
                                         for u in users))
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=10, headers={
                    "Authorization": f"Bearer {server.api_key}"}) as pub:
                r = await pub.post("/api/notifications", json={
                    "recipients": users, "type": "t", "title": "right after connect"})
                assert r.status_code == 201
            for s in streams:
                await s.wait_for(1, timeout=10)
                assert s.ids == [1]
        finally:
            for s in streams:
                await s.close()
