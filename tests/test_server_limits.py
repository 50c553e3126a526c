"""Issue 14, item 4: request heads are bounded in size and in time (``tocsin serve``).

The probes, over raw loopback sockets against a real server: 10 requests with 10 MB
of headers (they added 99 MB), connections sending their head at a byte at a time
(never cut), TCP connections that never send a request (kept open). And what must
not change: keep-alive, bodies larger than the head bound, streams that run longer
than the head timeout.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import psutil
import pytest
from httpx_sse import connect_sse

from tests.support.server import ServerProcess, start_server

MAX_HEAD = 8192
TIMEOUT_S = 1.0
CUT_WITHIN_S = 6.0
"""A bound for "was cut", far above the timeout (not a speed test)."""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(tmp_path_factory.mktemp("limits"),
                     extra=["--max-header-bytes", str(MAX_HEAD),
                            "--header-timeout", f"{TIMEOUT_S}s"])
    yield s
    s.stop()


def connect(srv: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.port), timeout=5)


def read_reply(s: socket.socket) -> bytes:
    data = b""
    s.settimeout(5)
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def closed_within(s: socket.socket, limit: float) -> bool:
    """Whether the server closes ``s`` within ``limit`` seconds (reading what it sends)."""
    deadline = time.monotonic() + limit
    s.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            if s.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def test_a_head_over_the_bound_gets_431_in_the_error_shape(srv: ServerProcess) -> None:
    with connect(srv) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        filler = b"X-Fill: " + b"a" * 1000 + b"\r\n"
        answered = False
        for _ in range(200):  # up to ~200 KB, stopping as soon as the server answers
            s.sendall(filler)
            if select.select([s], [], [], 0.01)[0]:
                answered = True
                break
        assert answered
        reply = read_reply(s)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), reply[:200]
    assert b"content-type: application/json" in head
    error = orjson.loads(body)["error"]
    assert error["code"] == "headers_too_large" and str(MAX_HEAD) in error["message"]


def test_one_huge_header_line_is_cut_too(srv: ServerProcess) -> None:
    with connect(srv) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (MAX_HEAD * 2))
        reply = read_reply(s)
    assert reply.startswith(b"HTTP/1.1 431 ")


def test_heads_within_the_bound_and_keep_alive_still_work(srv: ServerProcess) -> None:
    with connect(srv) as s:
        pad = b"X-Pad: " + b"p" * (MAX_HEAD - 200) + b"\r\n"
        for _ in range(2):  # the second request on the same connection is counted afresh
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + pad + b"\r\n")
            data = b""
            while b'"ok"' not in data:
                data += s.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 ")


def test_a_body_larger_than_the_head_bound_is_not_a_head(srv: ServerProcess) -> None:
    users = [f"user-{i:05d}" for i in range(3000)]  # ~45 KB of JSON, sent with the head
    with srv.publisher() as c:
        r = c.post("/api/notifications", json={"recipients": users, "type": "t", "title": "x"})
    assert r.status_code == 201, r.text


def test_ten_requests_with_10_mb_of_headers_do_not_grow_the_server(
        srv: ServerProcess) -> None:
    proc = psutil.Process(srv.proc.pid)
    before = proc.memory_info().rss
    line = b"X-Fill: " + b"a" * 65536 + b"\r\n"

    def flood() -> None:
        with connect(srv) as s:
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                for _ in range(10 * 1024 * 1024 // len(line)):
                    s.sendall(line)
            except OSError:
                pass  # cut by the server: what we want

    threads = [threading.Thread(target=flood) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    grown = proc.memory_info().rss - before
    assert grown < 20 * 1024 * 1024, f"grew {grown / 2**20:.0f} MB"


def test_slow_heads_are_cut(srv: ServerProcess) -> None:
    socks = [connect(srv) for _ in range(10)]
    try:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
        start = time.monotonic()
        cut: set[int] = set()
        i = 0
        while len(cut) < len(socks) and time.monotonic() - start < CUT_WITHIN_S:
            for n, s in enumerate(socks):
                if n in cut:
                    continue
                try:
                    s.send(request[i % len(request): i % len(request) + 1])
                    if closed_within(s, 0.02):
                        cut.add(n)
                except OSError:
                    cut.add(n)
            i += 1
            time.sleep(0.1)  # 10 bytes/s per connection, never a complete head
        assert len(cut) == len(socks)
    finally:
        for s in socks:
            s.close()


def test_connections_that_never_send_a_request_are_closed(srv: ServerProcess) -> None:
    socks = [connect(srv) for _ in range(10)]
    try:
        assert all(closed_within(s, CUT_WITHIN_S) for s in socks)
    finally:
        for s in socks:
            s.close()


def test_a_stream_outlives_the_head_timeout(srv: ServerProcess) -> None:
    token = srv.token("long-stream")
    with httpx.Client(base_url=srv.url, timeout=10) as c, connect_sse(
            c, "GET", "/api/notifications/stream",
            headers={"Authorization": f"Bearer {token}"}) as source:
        assert source.response.status_code == 200
        time.sleep(TIMEOUT_S * 2.5)
        with srv.publisher() as p:
            assert p.post("/api/notifications", json={
                "recipients": ["long-stream"], "type": "t", "title": "later"}).status_code == 201
        for sse in source.iter_sse():  # a read timeout raises: the event never came
            if "later" in sse.data:
                break
