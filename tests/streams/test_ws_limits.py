"""Issue 21, items 1, 2, 3 and 9: the WebSocket surface against a real ``tocsin serve``,
played by a raw socket (``tests/support/ws.py``) where the finding needs a hostile
client.

1. Control replies are bounded: a client that sends pings and never reads is closed
   with 4008 once its replies pass ``MAX_CONTROL_BYTES``, the server's memory stays
   flat, and a socket whose client takes nothing at all is dropped after
   ``--ws-write-timeout``; every message spends a read token (``--rate-reads``).
2. Frames are limited at the protocol layer: no permessage-deflate (a compressed frame
   is a protocol error, never inflated), a frame declaring more than 16 KiB or
   fragments adding up to more are closed with 1009 before the payload is held. Idle
   sockets count toward ``--max-user-streams``, ``/api/stats`` and ``/metrics``.
3. A token refresh ends each subscription the new token does not allow.
9. A refused (rate-limited) re-subscribe leaves the live subscription alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.frames import Opcode

from tests.cluster.helpers import channel_url
from tests.support.server import ServerProcess, start_server
from tests.support.services import REDIS_URL, need_redis
from tests.support.wait import eventually, wait_until
from tests.support.ws import RawWs, rss_mb
from tocsin.streams.ws import DRAIN_TIMEOUT_S, MAX_MESSAGE_BYTES

CAP = 3
PING = RawWs.frame(Opcode.TEXT, b'{"op":"ping"}')


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(tmp_path_factory.mktemp("ws"), extra=["--max-user-streams", str(CAP)])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A read bucket of 2: the connect and one more message."""
    s = start_server(tmp_path_factory.mktemp("ws-tight"), extra=["--rate-reads", "1/h:2"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stalling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(tmp_path_factory.mktemp("ws-stall"), extra=["--ws-write-timeout", "2s"])
    yield s
    s.stop()


def stats(srv: ServerProcess) -> dict[str, Any]:
    with srv.publisher() as c:
        body: dict[str, Any] = c.get("/api/stats").json()
        return body


def metric(srv: ServerProcess, name: str, labels: dict[str, str] | None = None) -> float:
    text = httpx.get(srv.url + "/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and (labels is None or sample.labels == labels):
                return float(sample.value)
    return 0.0  # not exported (yet)


def pong(ws: RawWs) -> None:
    """A round trip: the socket is past its handshake, accepted and counted."""
    seen = len(ws.messages)
    ws.send({"op": "ping"})
    assert ws.read_until(lambda w: any(m.get("op") in ("pong", "error")
                                       for m in w.messages[seen:]))


# -- item 1: control replies -------------------------------------------------------------
def test_a_client_that_sends_pings_and_never_reads_is_closed_and_memory_stays_flat(
        srv: ServerProcess) -> None:
    before_closes = metric(srv, "tocsin_ws_unread_closes_total")
    ws = RawWs(srv, srv.token("flood"), rcvbuf=4096)
    pong(ws)
    rss_before = rss_mb(srv)
    # ~2 MB of pings, whose replies are far more than the socket buffers hold: before
    # the fix every reply was kept (the server took ~170 MB a second of this). Now the
    # server stops reading once 32 KiB of replies wait, and closes the socket when
    # they have not gone out in DRAIN_TIMEOUT_S.
    for _ in range(200):
        if not ws.send_raw(PING * 500, timeout=3):
            break  # the server stopped reading
    wait_until(lambda: metric(srv, "tocsin_ws_unread_closes_total") == before_closes + 1,
               within=DRAIN_TIMEOUT_S + 20)
    # The client reads at last: what was written, then the close frame.
    close = ws.read_to_close(timeout=30)
    assert close is not None and close.code == 4008, close
    assert "read" in close.reason
    replies = [m for m in ws.messages if m.get("op") in ("pong", "error")]
    assert 0 < len(replies) < 100_000
    grown = rss_mb(srv) - rss_before
    assert grown < 30, f"RSS grew {grown:.0f} MB"
    ws.close()
    wait_until(lambda: stats(srv)["webSockets"] == 0)
    with srv.publisher() as c:
        assert c.get("/readyz").status_code == 200


def test_a_client_that_sends_fast_and_reads_is_slowed_not_closed(srv: ServerProcess) -> None:
    """5,000 pings in one burst while reading: the replies (~0.5 MB, rate_limited
    errors past the read bucket) outrun the writer, so the reader waits for them to
    go out instead of closing the socket."""
    ws = RawWs(srv, srv.token("fast-reader"))
    pong(ws)
    sender = threading.Thread(target=ws.send_raw, args=(PING * 5000, 60), daemon=True)
    sender.start()
    ws.read_until(lambda w: len(w.messages) >= 5001 or w.close_frame is not None,
                  timeout=60)
    sender.join(10)
    assert ws.close_frame is None, ws.close_frame
    assert len(ws.messages) == 5001
    ws.close()


def test_a_socket_whose_client_takes_nothing_is_dropped(stalling: ServerProcess) -> None:
    """The 4008 above can only reach a client that reads; one that never does would
    keep its socket (and its buffers) forever. After --ws-write-timeout with the
    server's writes backed up, the socket is aborted."""
    ws = RawWs(stalling, stalling.token("stall"), rcvbuf=4096)
    pong(ws)
    assert stats(stalling)["webSockets"] == 1
    for _ in range(200):  # replies back up until the server closes, then stops reading
        if not ws.send_raw(PING * 500, timeout=3):
            break
    wait_until(lambda: stats(stalling)["webSockets"] == 0, within=30)  # nothing read
    assert stats(stalling)["connections"] == 0

    def gone() -> bool:
        return not ws.send_raw(PING, timeout=1)

    wait_until(gone, within=15)  # reset by the server: sending fails
    ws.close()


def test_control_messages_spend_read_tokens(tight: ServerProcess) -> None:
    ws = RawWs(tight, tight.token("pinger"))  # the connect spends the first token
    ws.send({"op": "ping"})
    ws.wait_for(lambda m: m.get("op") == "pong")
    for _ in range(3):
        ws.send({"op": "ping"})
    err = ws.wait_for(lambda m: m.get("op") == "error")
    assert err["error"]["code"] == "rate_limited" and err["error"]["retryAfter"] >= 1
    ws.read_until(lambda w: len(w.messages) >= 4, timeout=2)
    assert [m["op"] for m in ws.messages] == ["pong", "error", "error", "error"]
    ws.close()


# -- item 2: frames, compression, counting -------------------------------------------------
def test_compression_is_not_negotiated_and_a_compressed_frame_is_never_inflated(
        srv: ServerProcess) -> None:
    big = b'{"op":"auth","token":"' + b"a" * (16 * 1024 * 1024) + b'"}'
    frame = RawWs.frame(Opcode.TEXT, big, compress=True)
    assert len(frame) < 20_000  # 16 MiB of text deflates to ~16 KB
    rss_before = rss_mb(srv)
    socks = []
    for _ in range(10):  # unauthenticated: the first message is still to come
        ws = RawWs(srv, headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send_raw(frame)
        socks.append(ws)
    for ws in socks:
        close = ws.read_to_close()
        assert close is not None and close.code == 1002, close  # RSV1 without the extension
        ws.close()
    assert rss_mb(srv) - rss_before < 30


def test_a_frame_declaring_more_than_16_kib_is_closed_before_its_payload(
        srv: ServerProcess) -> None:
    ws = RawWs(srv, srv.token("big-frame"))
    header = RawWs.frame(Opcode.TEXT, b" " * (16 * 1024 * 1024))[:14]  # 2 + 8 + mask
    ws.send_raw(header + b"x" * 1000)  # the rest never comes
    close = ws.read_to_close()
    assert close is not None and close.code == 1009, close
    ws.close()


def test_fragments_without_fin_are_closed_at_16_kib(srv: ServerProcess) -> None:
    ws = RawWs(srv, srv.token("fragments"))
    pong(ws)
    part = b" " * 8192
    ws.send_raw(RawWs.frame(Opcode.TEXT, b'{"op":"ping","x":"' + part, fin=False))
    for _ in range(3):
        if not ws.send_raw(RawWs.frame(Opcode.CONT, part, fin=False), timeout=5):
            break
    close = ws.read_to_close()
    assert close is not None and close.code == 1009, close
    ws.close()


@pytest.mark.redis
def test_workers_get_the_same_protocol_limits(tmp_path: Path) -> None:
    """``--workers N`` runs each worker through the same ``server.py`` settings."""
    need_redis()
    srv = start_server(tmp_path, broker=channel_url(REDIS_URL), extra=["--workers", "2"])
    try:
        for _ in range(4):  # sockets land on either worker
            ws = RawWs(srv, srv.token("worker-limits"),
                       headers={"Sec-WebSocket-Extensions": "permessage-deflate"})
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            header = RawWs.frame(Opcode.TEXT, b" " * (1 << 20))[:14]
            ws.send_raw(header + b"x" * 100)
            close = ws.read_to_close()
            assert close is not None and close.code == 1009, close
            ws.close()
    finally:
        srv.stop()


def test_a_message_at_the_limit_still_passes(srv: ServerProcess) -> None:
    ws = RawWs(srv, srv.token("at-limit"))
    body = b'{"op":"ping","pad":"' + b"p" * (MAX_MESSAGE_BYTES - 100) + b'"}'
    ws.send_raw(RawWs.frame(Opcode.TEXT, body))
    ws.wait_for(lambda m: m.get("op") == "pong")
    ws.close()


def test_idle_sockets_count_toward_the_cap_stats_and_metrics(srv: ServerProcess) -> None:
    user = "idle-holder"
    held = [RawWs(srv, srv.token(user, ["room:*"])) for _ in range(CAP)]
    for ws in held:
        pong(ws)
    over = RawWs(srv, srv.token(user))
    close = over.read_to_close()
    over.close()
    assert close is not None and close.code == 4008 and "streams" in close.reason, close
    # Before the close, the refusal's error frame: the same code an SSE connect gets,
    # so a client can tell a cap from a rate limit without parsing the reason.
    assert [m["error"]["code"] for m in over.messages if m.get("op") == "error"] == [
        "too_many_streams"]
    body = stats(srv)
    assert body["connections"] == CAP and body["webSockets"] == CAP
    assert {"user": user, "streams": CAP} in body["largestHolders"]
    assert metric(srv, "tocsin_connections", {"transport": "ws"}) == CAP
    assert metric(srv, "tocsin_websockets") == CAP
    # An SSE stream of the same user is refused too: one cap for every transport.
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        r = c.get("/api/notifications/stream", params={"token": srv.token(user)})
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_streams"
    # A socket's first subscription takes over its place; a second one needs another.
    held[0].send({"op": "subscribe", "stream": "inbox"})
    held[0].wait_for(lambda m: m.get("op") == "subscribed")
    assert stats(srv)["connections"] == CAP
    held[0].send({"op": "subscribe", "stream": "topic:room:1"})
    err = held[0].wait_for(lambda m: m.get("op") == "error")
    assert err["stream"] == "topic:room:1" and err["error"]["code"] == "too_many_streams"
    # Unsubscribing gives the place back to the socket; closing one frees it.
    held[0].send({"op": "unsubscribe", "stream": "inbox"})
    held[0].wait_for(lambda m: m.get("op") == "unsubscribed")
    assert stats(srv)["connections"] == CAP
    held.pop().close()
    wait_until(lambda: stats(srv)["connections"] == CAP - 1)
    for ws in held:
        ws.close()
    wait_until(lambda: stats(srv)["webSockets"] == 0 and stats(srv)["connections"] == 0)


# -- item 3: a refreshed token re-checks the subscriptions -------------------------------
def test_a_refreshed_token_ends_the_subscriptions_it_does_not_allow(
        srv: ServerProcess) -> None:
    user = "refresher"
    ws = RawWs(srv, srv.token(user, ["team:*"]))
    for label in ("topic:team:b", "topic:team:a", "inbox"):
        ws.send({"op": "subscribe", "stream": label})
        ws.wait_for(lambda m, label=label: m.get("op") == "subscribed"
                    and m["stream"] == label)
    ws.send({"op": "auth", "token": srv.token(user, ["team:a"])})
    ws.wait_for(lambda m: m.get("op") == "authenticated")
    err = ws.wait_for(lambda m: m.get("op") == "error")
    assert err["stream"] == "topic:team:b" and err["error"]["code"] == "forbidden"
    with srv.publisher() as c:
        for topic, title in (("team:b", "secret"), ("team:a", "first"), ("team:a", "last")):
            r = c.post(f"/api/topics/{topic}/events", json={"type": "t", "title": title})
            assert r.status_code == 201
    ws.wait_for(lambda m: m.get("stream") == "topic:team:a"
                and m.get("data", {}).get("title") == "last")
    assert not [m for m in ws.messages if m.get("stream") == "topic:team:b"
                and m.get("event")]
    ws.close()


# -- item 9: a refused re-subscribe keeps the subscription ------------------------------
def test_a_rate_limited_resubscribe_leaves_the_subscription_alone(
        tight: ServerProcess) -> None:
    user = "resubscriber"
    ws = RawWs(tight, tight.token(user))  # token 1: the connect
    ws.send({"op": "subscribe", "stream": "inbox"})  # token 2
    ws.wait_for(lambda m: m.get("op") == "subscribed")
    ws.send({"op": "subscribe", "stream": "inbox"})  # none left
    err = ws.wait_for(lambda m: m.get("op") == "error")
    assert err["stream"] == "inbox" and err["error"]["code"] == "rate_limited"
    with tight.publisher() as c:
        r = c.post("/api/notifications", json={"recipients": [user], "type": "t",
                                               "title": "still here"})
        assert r.status_code == 201
    ws.wait_for(lambda m: m.get("stream") == "inbox" and m.get("event") == "notification")
    ws.close()


# -- the protocol under tocsin serve: no parsing ahead of the application ----------------
async def test_the_protocol_parses_no_further_ahead_than_the_application() -> None:
    """uvicorn parses a whole socket read and queues every message in it: 256 KiB of
    pings became ~13,000 queued messages per socket while the application held back.
    ``server.py: limited_ws`` parses ``WS_FEED_BYTES`` at a time and keeps the rest
    as bytes; every message still arrives, in order."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState
    from websockets.client import ClientProtocol
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    from tocsin.server import WS_FEED_BYTES, limited_ws

    n = 12_000
    gate = asyncio.Event()
    received: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while len(received) < n:
            received.append((await receive())["text"])

    config = uvicorn.Config(app, ws_ping_interval=None, lifespan="off")
    config.load()
    protocol = limited_ws(30.0)
    assert not isinstance(protocol, str)
    made: list[Any] = []

    def factory() -> Any:
        made.append(protocol(config=config, server_state=ServerState(), app_state={}))
        return made[-1]

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        client = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
        client.send_request(client.connect())
        writer.write(b"".join(client.data_to_send()))
        while not any(isinstance(e, Response) for e in client.events_received()):
            client.receive_data(await asyncio.wait_for(reader.read(65536), 10))
        frames = [RawWs.frame(Opcode.TEXT, b'{"n":%d}' % i) for i in range(n)]
        writer.write(b"".join(frames))  # ~170 KB of small messages
        await asyncio.wait_for(writer.drain(), 10)
        proto = made[0]
        await eventually(lambda: proto.backlog, 10, "a backlog: nothing held back")
        assert proto.queue.qsize() <= WS_FEED_BYTES // min(map(len, frames)) + 1
        gate.set()
        await eventually(lambda: len(received) >= n, 20,
                         lambda: f"{n} messages, got {len(received)}")
        assert received == [f'{{"n":{i}}}' for i in range(n)]
    finally:
        writer.close()
        server.close()
