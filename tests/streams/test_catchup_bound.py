"""Issue 14, item 1: the per-connection bound holds on the catch-up path.

The probe: a subscriber allowed ``amp:*`` posts 500 topic events of ~20 KB, then opens
topic streams with ``Last-Event-ID: 0`` and never reads. Before the fix each such
stream read 500 events at once and queued them all past the 256 KiB outbox bound into
uvicorn's write buffer (~20 MB per connection). Now a catch-up read is sized by bytes,
the outbox bound stops it, and the writer waits for the socket to drain.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest
from httpx_sse import connect_sse

from tests.support.ids import seq_of
from tests.support.server import ServerProcess, start_server
from tocsin.events import StreamEvent
from tocsin.streams.connection import MAX_OUTBOX_BYTES, Connection
from tocsin.streams.endpoint import REPLAY_BATCH, next_batch

EVENTS = 500
DATA = "x" * 16_000  # with the body: ~20 KB frames
BODY = "b" * 4_000
STREAMS = 20
PER_STREAM_BOUND = 4 * MAX_OUTBOX_BYTES
"""What one non-reading stream may hold: its outbox, the transport's buffer above the
high-water mark, one catch-up read in flight (and the frames joined for a send)."""
SLACK = 48 * 1024 * 1024
"""Fixed costs of the first concurrent reads (store caches, allocator arenas: 15-30 MB
measured), allocator noise (generous)."""


def _event(seq: int, size: int) -> StreamEvent:
    return StreamEvent(stream="t:amp", seq=seq, epoch="e", name="activity",
                       data="y" * size)


def test_fill_stops_at_the_outbox_bound_and_keeps_fetching() -> None:
    c = Connection("t:amp")
    c.start_at(0, 100, "e")
    c.fill([_event(i, 20_000) for i in range(1, 101)], complete=True)
    assert c.fetching  # the rest is read again once the client drains
    assert MAX_OUTBOX_BYTES <= c.outbox_bytes < MAX_OUTBOX_BYTES + 21_000
    assert c.last_seq == len(c.outbox)  # exactly the queued prefix, in order
    # Once drained, the next fill continues right after it, and completes.
    c.take()
    first = c.last_seq
    c.fill([_event(i, 100) for i in range(first + 1, 101)], complete=True)
    assert c.last_seq == 100 and not c.fetching


def test_a_frame_larger_than_the_bound_still_goes() -> None:
    c = Connection("t:amp")
    c.start_at(0, 1, "e")
    c.fill([_event(1, MAX_OUTBOX_BYTES * 2)], complete=True)
    assert c.last_seq == 1 and not c.fetching


def test_reads_are_sized_by_bytes() -> None:
    assert next_batch([_event(1, 100)]) == REPLAY_BATCH
    big = next_batch([_event(1, 20_000), _event(2, 20_000)])
    assert 1 <= big <= MAX_OUTBOX_BYTES // 20_000
    assert next_batch([_event(1, MAX_OUTBOX_BYTES * 3)]) == 1


def _rss(proc: psutil.Process) -> int:
    return int(proc.memory_info().rss)


def _open_idle_stream(srv: ServerProcess, token: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that never reads
    s.sendall(f"GET /api/topics/amp:1/stream HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: Bearer {token}\r\nLast-Event-ID: 0\r\n\r\n".encode())
    return s


def _read_all_ids(srv: ServerProcess, token: str, want: int) -> list[int]:
    """A client that does read: every event, exactly once, in order (the seqs of the
    first ``want``; a read that stalls for 10 s fails)."""
    ids: list[int] = []
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": "0"}
    with httpx.Client(base_url=srv.url, timeout=10) as c, connect_sse(
            c, "GET", "/api/topics/amp:1/stream", headers=headers) as source:
        for sse in source.iter_sse():
            if not sse.data:  # the retry frame, and pings
                continue
            ids.append(seq_of(sse.id))
            if len(ids) == want:
                break
    return ids


@pytest.mark.timeout(240)
def test_non_reading_catch_up_streams_stay_within_the_bound(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        token = srv.token("amp-user", ["amp:*"])
        with srv.publisher() as c:  # (a subscriber may too, at its rate limit)
            for i in range(EVENTS):
                r = c.post("/api/topics/amp:1/events",
                           json={"type": "amp", "title": f"e{i}", "body": BODY,
                                 "data": {"d": DATA}})
                assert r.status_code == 201, r.text
        proc = psutil.Process(srv.proc.pid)
        time.sleep(0.5)
        before = _rss(proc)
        socks = [_open_idle_stream(srv, token) for _ in range(STREAMS)]
        try:
            # Let every stream do all it can (it would have queued its whole replay by
            # then); keep the highest RSS seen.
            peak = before
            for _ in range(16):
                time.sleep(0.5)
                peak = max(peak, _rss(proc))
            grown = peak - before
            bound = STREAMS * PER_STREAM_BOUND + SLACK
            assert grown < bound, (
                f"RSS grew {grown / 2**20:.0f} MB for {STREAMS} non-reading streams "
                f"(bound {bound / 2**20:.0f} MB)")
            # The bound costs no exactness: a reading client gets all 500, in order.
            assert _read_all_ids(srv, token, EVENTS) == list(range(1, EVENTS + 1))
        finally:
            for s in socks:
                s.close()
    finally:
        srv.stop()
