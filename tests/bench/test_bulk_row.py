"""The bulk-publishing row: Tocsin through ``POST /api/notifications/bulk``, a peer one
publish at a time (it has no bulk API); every notification acknowledged, each stored
once (small sizes: not a timed test, nothing is compared)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bench import report, scenarios
from bench.runner import Load
from bench.systems import make_systems


@pytest.fixture(scope="module")
def load() -> Iterator[Load]:
    ld = Load(1, None)
    yield ld
    ld.close()


@pytest.mark.parametrize("name", ["tocsin", "floor"])
def test_bulk_row(name: str, load: Load) -> None:
    sysm = make_systems([name])[0]
    sysm.start(timeout=60)
    try:
        res = scenarios.bulk(sysm, load, scenarios.SMOKE)
        assert res["bulk_api"] == (name == "tocsin")
        (step,) = res["steps"]
        assert step["acked"] >= scenarios.BULK_PER_REQUEST and step["failed"] == 0, step
        assert step["acked"] == step["requests"] * scenarios.BULK_PER_REQUEST
        if name == "tocsin":  # distinct recipients, each notification stored once
            total = 0
            for i in range(scenarios.SMOKE.bulk_users):
                r = httpx.get(f"http://127.0.0.1:{sysm.port}/api/notifications/unread-count",
                              headers={"Authorization": f"Bearer {sysm.token(f'bulk{i}')}"})
                total += r.json()["unreadCount"]
            assert total == step["acked"]
        assert report.brief("bulk", res).startswith("best ")
        label = next(r[0] for r in report.rows() if r[1] == "bulk")
        assert "no bulk API" in label
    finally:
        sysm.stop()
