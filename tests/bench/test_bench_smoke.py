"""Smoke test of the benchmark harness: each peer starts and delivers; a tiny run reports.

Not a timed test: sizes are tiny and nothing is compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import cli
from bench.runner import Load
from bench.scenarios import connect_users
from bench.systems import make_systems


@pytest.fixture(scope="module")
def load() -> Iterator[Load]:
    ld = Load(1, None)
    yield ld
    ld.close()


@pytest.mark.parametrize("name", ["floor", "typical", "socketio", "tocsin"])
def test_system_starts_and_delivers(name: str, load: Load) -> None:
    sysm = make_systems([name])[0]
    sysm.start(timeout=60)
    try:
        n = 40
        r = connect_users(sysm, load, f"smoke-{name}-", n, topic="bench:smoke")
        assert r["ok"] == n, r
        load.record(True, track_t=True)
        res = load.pub.call("burst", host="127.0.0.1", port=sysm.port,
                            path=sysm.topic_publish_path("bench:smoke"),
                            headers=sysm.publish_headers(), n=3)
        assert res["statuses"].get(201) == 3, res
        st = load.wait_events(3 * n, 20)
        assert st["events"] == 3 * n
        assert st["gaps"] == st["dupes"] == st["disorder"] == 0
        assert len(st["lat"]) == 3 * n and len(st["per_t"]) == 3
        load.close_all()

        users = [f"smoke-u-{name}-{i}" for i in range(n)]
        r = connect_users(sysm, load, f"smoke-u-{name}-", n)
        assert r["ok"] == n, r
        load.record(True)
        res = load.pub.call("unicast", host="127.0.0.1", port=sysm.port,
                            path="/api/notifications", headers=sysm.publish_headers(),
                            users=users, rate=100, duration=0.5, batch=2)
        assert res["acked"] > 0, res
        st = load.wait_events(res["acked"], 20)
        assert st["events"] == res["acked"]
        assert st["gaps"] == st["dupes"] == 0
    finally:
        load.close_all()
        sysm.stop()


def test_tiny_run_writes_table_and_plots(tmp_path: Path) -> None:
    rc = cli.main(["--sizes", "smoke", "--quick", "--systems", "floor",
                   "--scenarios", "idle,fanout,unicast,storm,slow", "--load-workers", "1",
                   "--no-pin", "--out", str(tmp_path)])
    assert rc == 0
    raw = json.loads((tmp_path / "raw-quick.json").read_text())
    res = raw["rounds"][0]["floor"]
    for scen in ("idle", "fanout", "unicast", "storm", "slow"):
        assert "error" not in res[scen], res[scen]
    assert res["storm"]["lost"] == 0 and res["storm"]["duplicated"] == 0
    assert res["slow"]["slow_consistent"] == res["slow"]["paused"] > 0, res["slow"]
    md = (tmp_path / "results-quick.md").read_text()
    assert "| Metric |" in md
    for png in ("latency_cdf-quick.png", "memory_per_conn-quick.png",
                "deliveries_per_s-quick.png"):
        assert (tmp_path / png).stat().st_size > 1000
