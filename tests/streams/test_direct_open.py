"""Streams opened straight into the parked state as their request head completes
(``Gate.connect_direct`` -> ``EventStream.open_parked``), skipping uvicorn's request
task: only when the hub vouches for the stream's head and the client's position is of
that epoch and not past it. Served by the real
protocol stack (uvicorn + the server's protocol) on a loopback port, in-process so
the test can count which path served each connect.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import orjson
import pytest
import uvicorn

from tests.support.server import free_port
from tests.support.services import REDIS_URL, need_redis
from tests.support.wait import eventually
from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.server import uvicorn_config
from tocsin.streams import endpoint
from tocsin.streams.hub import Hub

SECRET = "s" * 40
KEY = "k" * 24


class Served:
    def __init__(self, port: int, counts: dict[str, int], hub: Hub) -> None:
        self.port, self.counts, self.hub = port, counts, hub

    def token(self, user: str, ttl: float = 600) -> str:
        return jwt.encode({"sub": user, "exp": int(time.time() + ttl)}, SECRET,
                          algorithm="HS256")

    async def open(self, user: str, extra: str = "", ttl: float = 600
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
        r, w = await asyncio.open_connection("127.0.0.1", self.port)
        w.write(f"GET /api/notifications/stream?token={self.token(user, ttl)} HTTP/1.1\r\n"
                f"Host: x\r\n{extra}\r\n".encode())
        head = await asyncio.wait_for(r.readuntil(b"retry: 3000\n\n\r\n"), 5)
        return r, w, head

    async def publish(self, user: str, title: str) -> str:
        r, w = await asyncio.open_connection("127.0.0.1", self.port)
        body = orjson.dumps({"recipients": [user], "type": "t", "title": title})
        w.write(b"POST /api/notifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + KEY.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)
        data = await asyncio.wait_for(r.readuntil(b"}}"), 5)
        w.close()
        assert data.startswith(b"HTTP/1.1 201"), data
        return str(orjson.loads(data.partition(b"\r\n\r\n")[2])["ids"][user])


@pytest.fixture(params=["memory", "redis"])
async def served(request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    """Memory broker: streams open parked as the head completes. Redis broker: the rate
    limiter is remote, its check is awaited first, and the stream opens parked from its
    request task (``unstarted_socket``) — the same paths counted."""
    broker = "memory://"
    if request.param == "redis":
        need_redis()
        broker = REDIS_URL
    counts = {"direct": 0}
    original = endpoint.EventStream.open_parked

    def counting(self: endpoint.EventStream, transport: object, headers: object) -> bool:
        taken = original(self, transport, headers)
        counts["direct"] += taken
        return taken

    monkeypatch.setattr(endpoint.EventStream, "open_parked", counting)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
                        jwt_secret=SECRET, api_keys=KEY, host="127.0.0.1", port=free_port(),
                        cors_origins="http://app.test", log_level="warning",
                        broker_url=broker)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(settings, app))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, 30, "the server to start")
    yield Served(settings.port, counts, app.state.tocsin.hub)
    server.should_exit = True
    await task


def _strip_date(head: bytes) -> bytes:
    return b"\r\n".join(x for x in head.split(b"\r\n") if not x.startswith(b"date:"))


async def test_reconnect_at_head_is_served_directly_and_identically(served: Served) -> None:
    _r1, w1, head1 = await served.open("ann", "Origin: http://app.test\r\n")
    assert served.counts["direct"] == 0  # first connect: the head is not known yet
    await asyncio.sleep(0.3)  # its position settles (a store read) after the head is sent
    w1.close()
    r2, w2, head2 = await served.open("ann", "Origin: http://app.test\r\n")
    assert served.counts["direct"] == 1
    # the same bytes as the ASGI path wrote (CORS headers included)
    assert _strip_date(head1) == _strip_date(head2)
    assert b"access-control-allow-origin: http://app.test" in head2
    eid = await served.publish("ann", "hello")
    live = await asyncio.wait_for(r2.readuntil(b"\n\n\r\n"), 5)
    assert b"event: notification" in live and b'"title":"hello"' in live
    w2.close()

    # at the head (its Last-Event-ID is the newest): direct again, nothing replayed
    seq_id = live.split(b"id: ")[1].split(b"\n")[0].decode()
    r3, w3, _ = await served.open("ann", f"Last-Event-ID: {seq_id}\r\n")
    assert served.counts["direct"] == 2
    await served.publish("ann", "second")
    nxt = await asyncio.wait_for(r3.readuntil(b"\n\n\r\n"), 5)
    assert b'"title":"second"' in nxt and b'"title":"hello"' not in nxt
    w3.close()
    assert eid


async def test_behind_the_head_is_served_directly_and_replays(served: Served) -> None:
    r1, w1, _ = await served.open("bo")
    await served.publish("bo", "one")
    first = await asyncio.wait_for(r1.readuntil(b"\n\n\r\n"), 5)
    w1.close()
    await served.publish("bo", "two")  # published while bo is away
    await served.publish("bo", "three")
    before = served.counts["direct"]
    seq_id = first.split(b"id: ")[1].split(b"\n")[0].decode()
    r2, w2, _ = await served.open("bo", f"Last-Event-ID: {seq_id}\r\n")
    # the hub vouches for the head, the client is behind it: opened parked, fetching
    assert served.counts["direct"] == before + 1
    replay = b""
    while b'"title":"three"' not in replay:
        replay += await asyncio.wait_for(r2.readuntil(b"\n\n\r\n"), 5)
    assert b'"title":"one"' not in replay
    assert replay.index(b'"title":"two"') < replay.index(b'"title":"three"')
    await served.publish("bo", "four")  # then live, in order, once
    live = await asyncio.wait_for(r2.readuntil(b"\n\n\r\n"), 5)
    assert b'"title":"four"' in live and b"three" not in live
    w2.close()


async def test_an_id_the_hub_does_not_vouch_for_takes_the_asgi_path(served: Served) -> None:
    r1, w1, _ = await served.open("di")
    await served.publish("di", "one")
    first = await asyncio.wait_for(r1.readuntil(b"\n\n\r\n"), 5)
    w1.close()
    seq_id = first.split(b"id: ")[1].split(b"\n")[0].decode()
    epoch, _, seq = seq_id.rpartition("-")
    before = served.counts["direct"]
    for other in (f"{epoch}-{int(seq) + 5}", f"x{epoch}-{seq}"):  # past the head; another epoch
        r2, w2, _ = await served.open("di", f"Last-Event-ID: {other}\r\n")
        reset = await asyncio.wait_for(r2.readuntil(b"\n\n\r\n"), 5)
        assert b"event: reset" in reset  # the store's bounds decided, on the ASGI path
        w2.close()
    assert served.counts["direct"] == before


async def test_a_directly_opened_stream_still_expires(served: Served) -> None:
    _, w0, _ = await served.open("cy")
    await asyncio.sleep(0.3)
    w0.close()
    r, w, _ = await served.open("cy", ttl=1.5)
    assert served.counts["direct"] >= 1
    rest = await asyncio.wait_for(r.read(), 6)  # ``expired``, then the stream ends
    assert b"event: expired" in rest and rest.endswith(b"0\r\n\r\n")
    w.close()


def _stream_objects() -> dict[str, int]:
    names = ("Parked", "Follower", "LimitedHttpToolsProtocol", "RequestResponseCycle")
    found: dict[str, int] = {}
    for o in gc.get_objects():
        name = type(o).__name__
        if name in names:
            found[name] = found.get(name, 0) + 1
    return found


async def test_closed_streams_are_freed_without_the_cyclic_collector(served: Served) -> None:
    """A closed stream, whichever path opened it, is freed by refcounting: left to the
    cyclic collector, a reconnect storm's dropped streams were most of the cost of the
    full collections that stop the event loop (server.py: ``_let_go``; parked.py)."""
    users = [f"gc{i}" for i in range(20)]
    gc.collect()
    gc.disable()
    try:
        for path in ("asgi", "direct"):  # first connects: head unknown; then at the head
            before = served.counts["direct"]
            opened = [await served.open(u) for u in users]
            await eventually(lambda: served.hub.connections == len(users), 5)
            assert (served.counts["direct"] - before) == (len(users) if path == "direct" else 0)
            await asyncio.sleep(0.3)  # positions settled, the ASGI-path streams parked
            for _, w, _ in opened:
                w.close()
            await eventually(lambda: served.hub.connections == 0, 5)
            await asyncio.sleep(0.2)  # the transports' connection_lost callbacks
            assert _stream_objects() == {}, path
    finally:
        gc.enable()
