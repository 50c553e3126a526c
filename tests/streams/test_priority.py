"""Priority under pressure (issue 10): the outbox keeps seq order and reserves headroom
for ``urgent`` notifications; a slow client never delays a healthy one.

Order within a stream is the resume contract (ids strictly increasing, a client's last
id is everything it has), so an urgent event is never written ahead of older events of
the same stream. What priority changes is *which* event pushes a backed-up connection
into store catch-up: lower priorities first (docs/ARCHITECTURE.md, "Priority under
pressure").
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import orjson

from tests.support.server import ServerProcess, start_server
from tocsin.events import StreamEvent
from tocsin.streams.connection import MAX_OUTBOX_BYTES, URGENT_RESERVE_BYTES, Connection


def _note(seq: int, priority: str, size: int = 100) -> StreamEvent:
    data = orjson.dumps({"id": f"n{seq}", "type": "t", "title": "x" * size,
                         "priority": priority, "data": {"priority": "urgent"}}).decode()
    return StreamEvent(stream="u:a", seq=seq, name="notification", data=data, epoch="e")


def _backed_up() -> Connection:
    c = Connection("u:a")
    c.start_at(0, 0, "e")
    seq = 0
    while c.outbox_bytes <= MAX_OUTBOX_BYTES:
        seq += 1
        c.offer(_note(seq, "low", 10_000))
    assert not c.fetching and c.last_seq == seq
    return c


def test_urgent_uses_the_reserve_in_order() -> None:
    c = _backed_up()
    last = c.last_seq
    c.offer(_note(last + 1, "urgent"))
    assert not c.fetching and c.last_seq == last + 1  # queued live, right behind the rest
    assert c.counters.urgent_reserved == 1 and c.counters.overflows == 0


def test_lower_priorities_fall_back_to_the_store_first() -> None:
    c = _backed_up()
    last = c.last_seq
    c.offer(_note(last + 1, "high"))
    assert c.fetching and c.last_seq == last and c.counters.overflows == 1
    # From then on order wins: a later urgent event is read from the store after it.
    c.offer(_note(last + 2, "urgent"))
    assert c.last_seq == last and c.counters.urgent_reserved == 0


def test_the_reserve_is_bounded() -> None:
    c = _backed_up()
    seq = c.last_seq
    while not c.fetching:
        seq += 1
        c.offer(_note(seq, "urgent", 10_000))
    assert c.outbox_bytes <= MAX_OUTBOX_BYTES + URGENT_RESERVE_BYTES + 11_000


def test_urgency_reads_the_top_level_priority_only() -> None:
    assert _note(1, "urgent").urgent
    assert not _note(1, "low").urgent  # its payload's "priority": "urgent" is not it
    assert not StreamEvent("u:a", 1, "read", '{"priority":"urgent"}', "e").urgent
    assert not StreamEvent("u:a", 1, "notification", "not json", "e").urgent


# -- over real sockets ---------------------------------------------------------------


def _open(srv: ServerProcess, user: str, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", srv.port))
    s.sendall(f"GET /api/notifications/stream?token={srv.token(user)} HTTP/1.1\r\n"
              f"Host: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    return s


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.ids = sock, b"", list[int]()
        self.titles: dict[int, str] = {}

    def read_until(self, pred: object, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(pred) and pred():
                return True
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                break
            if not chunk:
                break
            self.buf += chunk
            *frames, self.buf = self.buf.split(b"\n\n")
            for f in frames:
                lines = f.split(b"\n")
                ids = [ln[4:] for ln in lines if ln.startswith(b"id: ")]
                data = [ln[6:] for ln in lines if ln.startswith(b"data: ")]
                if ids and data:
                    seq = int(ids[0].rsplit(b"-", 1)[-1])
                    self.ids.append(seq)
                    self.titles[seq] = orjson.loads(data[0]).get("title", "")
        return bool(callable(pred) and pred())


def test_slow_client_and_healthy_client(tmp_path: Path) -> None:
    srv = start_server(tmp_path, extra=["--heartbeat", "1s"])
    try:
        user = "prio"
        slow = _open(srv, user, rcvbuf=4096)  # stops reading after the headers
        healthy = _Reader(_open(srv, user))
        time.sleep(0.5)
        body, pad = "b" * 4_000, {"d": "x" * 16_000}
        low = 60  # ~1.2 MB: well past the outbox bound and the sockets' buffers
        with srv.publisher() as c:
            for i in range(low):
                r = c.post("/api/notifications", json={
                    "recipients": [user], "type": "bulk", "title": f"low {i}",
                    "body": body, "data": pad, "priority": "low"})
                assert r.status_code == 201, r.text
            assert healthy.read_until(lambda: len(healthy.ids) == low, 30)
            t0 = time.monotonic()
            r = c.post("/api/notifications", json={
                "recipients": [user], "type": "alarm", "title": "URGENT",
                "priority": "urgent"})
            assert r.status_code == 201, r.text
            assert healthy.read_until(lambda: "URGENT" in healthy.titles.values(), 5)
            latency = time.monotonic() - t0
        print(f"urgent latency {latency * 1000:.0f} ms")
        assert latency < 1.0, latency  # publish + delivery, not held up by the slow one
        # The slow client reads again: everything, once, in order, urgent last.
        late = _Reader(slow)
        assert late.read_until(lambda: len(late.ids) == low + 1, 60), len(late.ids)
        assert late.ids == list(range(1, low + 2))
        assert late.titles[low + 1] == "URGENT"
        assert healthy.ids == list(range(1, low + 2))
        slow.close()
        healthy.sock.close()
    finally:
        srv.stop()
