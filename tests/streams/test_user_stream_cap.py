"""Issue 14, item 2: a cap on the streams one user holds open (``--max-user-streams``).

The probe: one user opened 2,000 streams. Here the cap is 3: the fourth stream of a
user gets 429 ``too_many_streams`` in the error shape, other users are unaffected, a
closed stream frees its place, concurrent connects cannot slip past the cap, and
``/api/stats`` lists the largest holders.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.support.server import ServerProcess, start_server
from tests.support.wait import wait_until

CAP = 3


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(tmp_path_factory.mktemp("cap"), extra=["--max-user-streams", str(CAP)])
    yield s
    s.stop()


INBOX = "/api/notifications/stream"


def connect(srv: ServerProcess, user: str, path: str = INBOX) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: http://a.test\r\n"
              f"Authorization: Bearer {srv.token(user, ['room:*'])}\r\n\r\n".encode())
    return s


def head(s: socket.socket) -> bytes:
    """The response head and, for an error reply, its whole body (the head and the
    body may arrive in separate packets)."""
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        head_part, sep, body = data.partition(b"\r\n\r\n")
        if sep and not head_part.startswith(b"HTTP/1.1 429"):
            break  # a stream: its head is what the caller wants
        if sep and (b"}}" in body or body.endswith(b"\r\n0\r\n\r\n")):
            break
        more = s.recv(65536)
        if not more:
            break
        data += more
    return data


def refusal(data: bytes) -> dict[str, str]:
    head_part, _, body = data.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 429"), data
    if b"transfer-encoding: chunked" in head_part.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    error: dict[str, str] = orjson.loads(body)["error"]
    return error


def stats(srv: ServerProcess) -> dict[str, object]:
    with srv.publisher() as c:
        body: dict[str, object] = c.get("/api/stats").json()
        return body


def wait_open(srv: ServerProcess, total: int) -> None:
    wait_until(lambda: stats(srv)["connections"] == total, 10,
               lambda: f"{total} open streams (stats: {stats(srv)})", 0.05)


def test_the_stream_over_the_cap_gets_429_and_the_cap_is_per_user(srv: ServerProcess) -> None:
    held = [connect(srv, "capped", p) for p in
            ("/api/notifications/stream", "/api/topics/room:1/stream",
             "/api/notifications/stream")]
    try:
        for s in held:
            assert head(s).startswith(b"HTTP/1.1 200")
        over = connect(srv, "capped", "/api/topics/room:2/stream")
        err = refusal(head(over))
        over.close()
        assert err["code"] == "too_many_streams" and "3" in err["message"]
        # Someone else is not affected.
        other = connect(srv, "someone-else")
        assert head(other).startswith(b"HTTP/1.1 200")
        listed = stats(srv)["largestHolders"]
        assert listed == [{"user": "capped", "streams": 3},
                          {"user": "someone-else", "streams": 1}]
        with srv.publisher() as c:
            metrics = c.get("/metrics").text
        assert "tocsin_streams_refused_total 1.0" in metrics
        other.close()
        # A closed stream frees its place.
        held.pop().close()
        wait_open(srv, 2)
        again = connect(srv, "capped")
        assert head(again).startswith(b"HTTP/1.1 200")
        held.append(again)
    finally:
        for s in held:
            s.close()
    wait_open(srv, 0)
    assert stats(srv)["largestHolders"] == []


def test_concurrent_connects_cannot_slip_past_the_cap(srv: ServerProcess) -> None:
    socks = [connect(srv, "storm") for _ in range(12)]
    try:
        statuses = [head(s)[:12] for s in socks]
        assert statuses.count(b"HTTP/1.1 200") == CAP
        assert statuses.count(b"HTTP/1.1 429") == 12 - CAP
    finally:
        for s in socks:
            s.close()
    wait_open(srv, 0)
