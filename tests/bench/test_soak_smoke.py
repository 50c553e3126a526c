"""Smoke run of the soak (``bench/soak.py``): one minute of the mixed load against a
real server, at small sizes. Checks the harness works and reports; nothing is timed
and flatness is not judged on a one-minute run (the allocator is still warming up)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import soak


def test_one_minute_soak_samples_and_reports(tmp_path: Path) -> None:
    soak.main(["--minutes", "1", "--streams", "20", "--slow", "2", "--rate", "10",
               "--users", "10", "--sample", "3", "--out", str(tmp_path)])
    result = json.loads((tmp_path / "soak.json").read_text())
    samples = result["samples"]
    assert len(samples) >= 15
    assert all(s["rss_kb"] > 0 and s["fds"] > 0 for s in samples)
    assert max(s["streams"] for s in samples) > 0
    c = result["counters"]
    assert c["published"] > 0 and c["events"] > 0 and c["connects"] > 20
    assert not c["publish_errors"], c
    assert c["slow_bytes"] > 0
    assert result["verdict"]["flat"] is not None
    md = (tmp_path / "soak.md").read_text()
    assert "| RSS max |" in md and "| stream connects |" in md


def test_verdict_flags_growth() -> None:
    flat = [{"rss_kb": 1000, "fds": 30} for _ in range(8)]
    assert soak.verdict(flat)["flat"] is True
    leaking = [{"rss_kb": 1000 + 100 * i, "fds": 30} for i in range(8)]
    assert soak.verdict(leaking)["flat"] is False
    fds = [{"rss_kb": 1000, "fds": 30 + 10 * i} for i in range(8)]
    assert soak.verdict(fds)["flat"] is False
