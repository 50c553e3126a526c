"""Nchan as a benchmark system: its ids are ordered by a key function (not consecutive
integers like Tocsin's), and a tiny run against a real nginx + Nchan delivers in order.

The live test skips when nginx or the Nchan module is missing, and fails instead when
``TOCSIN_REQUIRE_SERVICES=1`` (as in CI, which installs them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from bench.loadgen import Spec, SSEClient, Totals, nchan_id_key, seq_id_key
from bench.runner import Load
from bench.scenarios import connect_users
from bench.systems import make_systems
from tests.support.services import need


def test_seq_id_key_splits_epoch_and_seq() -> None:
    assert seq_id_key(b"k3f9-41") == (b"k3f9", 41)
    assert seq_id_key(b" 7 ") == (b"", 7)
    assert seq_id_key(b"a-b-12") == (b"a-b", 12)  # the seq is after the last dash


def test_nchan_id_key_orders_time_then_index() -> None:
    ids = [b"1796017978:0", b"1796017978:1", b"1796017978:10", b"1796017979:0"]
    keys = [nchan_id_key(i) for i in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert nchan_id_key(b"1796017978:2") == (1796017978, 2)
    # byte order would put ":10" before ":2"; the key does not
    assert nchan_id_key(b"1796017978:2") < nchan_id_key(b"1796017978:10")
    # multiplexed form: one part per channel, the changed one in brackets
    assert nchan_id_key(b"1796017978:[3],1796017970:1") == (1796017978, 3, 1796017970, 1)
    assert nchan_id_key(b"1796017978:3,1796017970:1") < nchan_id_key(
        b"1796017978:3,1796017971:[0]")


class _FakeWorker(SimpleNamespace):
    """Just what a client's id checks touch."""


def _client(ids: str) -> SSEClient:
    loop = asyncio.new_event_loop()
    w: Any = _FakeWorker(loop=loop, totals=Totals(), recording=True, track_t=False,
                         host="127.0.0.1", errors=[])
    c = SSEClient(w, Spec("k", "/sub/x", "sse", ids))
    c.seen_ids = set()
    return c


def _feed(c: SSEClient, frames: list[bytes]) -> None:
    c.head = False
    c.data_received(b"".join(b"id: " + f + b'\ndata: {"data":{"bench_t":1.0}}\n\n'
                             for f in frames))


def test_nchan_ids_checked_for_order_and_duplicates() -> None:
    c = _client("nchan")
    _feed(c, [b"100:0", b"100:1", b"100:2", b"101:0"])
    t = c.w.totals
    assert (t.events, t.dupes, t.disorder, t.gaps) == (4, 0, 0, 0)
    assert c.last_raw == b"101:0"
    _feed(c, [b"101:0", b"100:1"])  # both already held: duplicates
    assert (t.dupes, t.disorder) == (2, 0)
    c.seen_ids = None  # without the seen set an older id is out of order
    _feed(c, [b"100:5"])
    assert t.disorder == 1
    c.w.loop.close()


def test_tocsin_ids_keep_gap_checks() -> None:
    c = _client("seq")
    _feed(c, [b"e1-1", b"e1-2", b"e1-4", b"e1-4", b"e1-3"])
    t = c.w.totals
    assert (t.gaps, t.missing, t.dupes, t.disorder) == (1, 1, 1, 1)
    assert c.last_id == 4 and c.epoch == b"e1"
    c.w.loop.close()


@pytest.fixture(scope="module")
def load() -> Iterator[Load]:
    ld = Load(1, None)
    yield ld
    ld.close()


def test_nchan_delivers_in_order(load: Load) -> None:
    sysm = make_systems(["nchan"])[0]
    reason = sysm.available()
    need(reason is None, f"nginx with the Nchan module ({reason})")
    sysm.start(timeout=30)
    try:
        r = connect_users(sysm, load, "nchan-smoke-", 3, topic="bench:smoke",
                          track_seen=True)
        assert r["ok"] == 3, r
        load.record(True, track_t=True)
        res = load.pub.call("burst", host="127.0.0.1", port=sysm.port,
                            path=sysm.topic_publish_path("bench:smoke"),
                            headers=sysm.publish_headers(), n=5, concurrency=1)
        assert res["statuses"] == {201: 5}, res
        st = load.wait_events(15, 10)
        assert st["events"] == 15
        assert st["dupes"] == st["disorder"] == 0
        assert len(st["per_t"]) == 5 and all(v[1] == 3 for v in st["per_t"].values())
        load.close_all()

        # unicast: one channel per user, one publish per recipient (pipelined)
        users = [f"nchan-u{i}" for i in range(3)]
        r = connect_users(sysm, load, "nchan-u", 3)
        assert r["ok"] == 3, r
        load.record(True)
        res = load.pub.call("unicast", host="127.0.0.1", port=sysm.port,
                            path=sysm.user_publish_path(), headers=sysm.publish_headers(),
                            users=users, rate=40, duration=0.5, batch=2)
        assert res["acked"] == 20 and set(res["statuses"]) == {201}, res
        st = load.wait_events(20, 10)
        assert st["events"] == 20 and st["dupes"] == st["disorder"] == 0
    finally:
        load.close_all()
        sysm.stop()
