"""deploy/grafana/tocsin.json: every metric a panel queries is one a running node
exports at /metrics, and every alert docs/deploy.md recommends has its panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import start_server

ROOT = Path(__file__).parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "tocsin.json"
METRIC = re.compile(r"\btocsin_[a-z_]+\b")
SUFFIXES = ("_bucket", "_count", "_sum")


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [p for p in found if p["type"] != "row"]


def queried(panel: dict[str, Any]) -> set[str]:
    return {m for t in panel["targets"] for m in METRIC.findall(t["expr"])}


def exported(text: str) -> set[str]:
    """The metric names of a /metrics reply: each family (``# HELP``) and sample."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_queried_metric_is_exported(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        text = httpx.get(srv.url + "/metrics").text
    finally:
        srv.stop()
    names = exported(text)
    wanted = set().union(*(queried(p) for p in panels()))
    assert len(wanted) >= 15
    missing = {m for m in wanted if m not in names and family(m) not in
               {family(n) for n in names}}
    assert missing == set(), f"the dashboard queries metrics /metrics lacks: {missing}"
    histogram = "tocsin_publish_write_seconds_bucket"
    assert histogram in names


def test_every_recommended_alert_has_a_panel() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    alerts = {m for line in deploy.splitlines() if re.search(r"alert on", line, re.I)
              for m in METRIC.findall(line)}
    assert {"tocsin_publish_write_seconds", "tocsin_ratelimit_errors_total",
            "tocsin_timers_given_up_total"} <= alerts
    in_panels = {family(m) for p in panels() for m in queried(p)}
    assert alerts - in_panels == set()


def test_panels_are_well_formed() -> None:
    seen = set()
    for p in panels():
        assert p["title"] and p["targets"], p
        assert p["datasource"]["uid"] == "${datasource}"
        assert p["id"] not in seen
        seen.add(p["id"])
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24
