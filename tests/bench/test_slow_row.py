"""The slow-consumers row reaches the server's per-connection bound and checks that the
slow clients end consistent once they read again (small sizes: a few seconds each)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from bench import scenarios
from bench.publisher import BODY_MAX, padded
from bench.runner import Load
from bench.systems import make_systems


@pytest.fixture(scope="module")
def load() -> Iterator[Load]:
    ld = Load(1, None)
    yield ld
    ld.close()


def test_padded_fits_tocsins_limits() -> None:
    assert padded(0)[1] is None
    body, pad = padded(19_000)
    assert len(body) == BODY_MAX and pad is not None
    assert len(body) + len(pad) == 19_000
    assert len(body.encode()) <= 4096 and len(pad) + 60 <= 16 * 1024  # body, data limits


# Tocsin's bound: 256 KiB outbox + the transport's buffer (~0.4 MB with the slow
# clients' small window); the floor's: 1 MiB unsent, then it drops the client
SIZES = {"tocsin": dict(slow_rate=50, slow_duration=1.2),  # 60 x 19 KB = 1.1 MB owed
         "floor": dict(slow_rate=50, slow_duration=2.4)}   # 120 x 19 KB = 2.3 MB owed


@pytest.mark.parametrize("name", ["tocsin", "floor"])
def test_slow_consumers_reach_the_bound_and_resume(name: str, load: Load) -> None:
    sz = dataclasses.replace(scenarios.SMOKE, slow_users=20, slow_share=0.1,
                             slow_base_s=0.2, slow_pad=19_000, slow_resume_s=10.0,
                             **SIZES[name])
    sysm = make_systems([name])[0]
    sysm.start(timeout=60)
    try:
        res = scenarios.slow(sysm, load, sz)
    finally:
        load.close_all()
        sysm.stop()
    assert "error" not in res, res
    assert res["paused"] == res["paused_ok"] == 2
    assert res["bound_reached"], res
    if name == "tocsin":  # left to the store, then served from it: no reset, no close
        assert res["outbox_overflows"] >= 2 and res["slow_closed"] == 0
    else:  # dropped, then resumed by Last-Event-ID from its history
        assert res["slow_closed"] == 2 and res["slow_reconnected"] == 2
    assert res["slow_consistent"] == 2, res["slow_examples"]
    assert res["slow_all_in_order"] == 2 and res["slow_reset"] == 0
    assert res["slow_events_min"] >= res["published_since_join"]
    assert res["others_gaps"] == res["others_dupes"] == res["others_closed"] == 0
