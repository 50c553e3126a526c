"""How ``/metrics`` merges the workers' series under ``--workers`` (workermetrics.merge)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tocsin.metrics import LOWEST, PER_WORKER
from tocsin.workermetrics import merge

W0 = b"""# HELP tocsin_events_total Events
# TYPE tocsin_events_total counter
tocsin_events_total{kind="notification"} 4400.0
tocsin_events_created{kind="notification"} 1.7e9
# HELP tocsin_broker_up up
# TYPE tocsin_broker_up gauge
tocsin_broker_up 1.0
# HELP tocsin_publish_write_seconds w
# TYPE tocsin_publish_write_seconds histogram
tocsin_publish_write_seconds_bucket{le="0.01"} 3.0
tocsin_publish_write_seconds_bucket{le="+Inf"} 4.0
tocsin_publish_write_seconds_count 4.0
tocsin_publish_write_seconds_sum 0.5
# HELP process_open_fds fds
# TYPE process_open_fds gauge
process_open_fds 40.0
"""
W1 = (W0.replace(b"4400.0", b"95.0").replace(b"tocsin_broker_up 1.0", b"tocsin_broker_up 0.0")
      .replace(b"process_open_fds 40.0", b"process_open_fds 12.0"))


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.decode()) for s in f.samples}


def test_counters_and_histograms_add_up_gauges_pick_and_process_series_stay_per_worker(
) -> None:
    out = samples(merge({"0": W0, "1": W1}, per_worker=PER_WORKER, lowest=LOWEST))
    assert out[("tocsin_events_total", (("kind", "notification"),))] == 4495
    assert ("tocsin_events_created", (("kind", "notification"),)) not in out
    assert out[("tocsin_broker_up", ())] == 0  # the lowest: one worker is cut off
    assert out[("tocsin_publish_write_seconds_bucket", (("le", "0.01"),))] == 6
    assert out[("tocsin_publish_write_seconds_count", ())] == 8
    assert out[("tocsin_publish_write_seconds_sum", ())] == 1.0
    assert out[("process_open_fds", (("worker", "0"),))] == 40
    assert out[("process_open_fds", (("worker", "1"),))] == 12
    assert ("process_open_fds", ()) not in out
