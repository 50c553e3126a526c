"""The rows ``bench.ab`` compares: which scenario each runs, at which sizes, and the
headline figures taken from its raw result (each with the direction that is better)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bench import scenarios
from bench.runner import Load
from bench.scenarios import Sizes
from bench.systems import System, TocsinWS

# higher/lower: the better direction; zero: a correctness count, anything but 0 is a defect;
# info: context (what capped the run), no verdict
Better = Literal["higher", "lower", "zero", "info"]
Figures = dict[str, float | None]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    better: Better


# filled in by bench.ab for every run, whatever the row: the noise next to each result
OTHERS = Metric("others_cpu_pct", "other jobs' CPU during the run, % of one core", "info")


@dataclass(frozen=True)
class Row:
    name: str
    title: str
    metrics: tuple[Metric, ...]
    # (server, load, sizes, load cores) -> the scenario's raw result for this row
    run: Callable[[System, Load, Sizes, int], dict[str, Any]]
    figures: Callable[[dict[str, Any]], Figures]
    # the sizes this row runs at, from the chosen size (quick, full, smoke)
    sizes: Callable[[Sizes], Sizes] = lambda sz: sz


def _fanout(n: int) -> Row:
    def sizes(sz: Sizes) -> Sizes:
        # one N only, whatever the size's own fan_ns (quick's is 1k alone): the row is
        # "fan-out Nk"; the size still sets the number of events and bursts
        return dataclasses.replace(sz, fan_ns=(n,))

    def run(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
        res: dict[str, Any] = scenarios.fanout(sysm, load, sz, load_cores)[str(n)]
        return res

    def figures(r: dict[str, Any]) -> Figures:
        return {"deliveries_per_s": r["deliveries_per_s"],
                "per_cpu_s": r["deliveries_per_server_cpu_s"],
                "ttl_p50_ms": r["ttl_p50_ms"], "ttl_p99_ms": r["ttl_p99_ms"],
                "faults": r["gaps"] + r["dupes"] + r["disorder"],
                "undelivered": 0 if r["all_delivered"] else 1,
                "server_cpu_pct": r["server_cpu_pct"], "load_cpu_pct": r["load_cpu_pct"]}

    return Row(
        name=f"fanout{n // 1000}k", title=f"Fan-out {n:,}: one topic, {n:,} subscribers",
        metrics=(Metric("deliveries_per_s", "deliveries/s (burst)", "higher"),
                 Metric("per_cpu_s", "deliveries per server CPU-second", "higher"),
                 Metric("ttl_p50_ms", "time to last delivery p50, ms", "lower"),
                 Metric("ttl_p99_ms", "time to last delivery p99, ms", "lower"),
                 Metric("faults", "gaps + duplicates + disorder", "zero"),
                 Metric("undelivered", "runs not delivering everything", "zero"),
                 Metric("server_cpu_pct", "server CPU during bursts, %", "info"),
                 Metric("load_cpu_pct", "load CPU during bursts, %", "info"), OTHERS),
        run=run, figures=figures, sizes=sizes)


def _unicast_run(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
    return scenarios.unicast(sysm, load, sz, load_cores)


def _unicast_figures(r: dict[str, Any]) -> Figures:
    # latency and CPU at the ladder's lowest rate: the one step both sides always run
    low = r["steps"][0]
    return {"best_rate": r["best_rate"], "max_rate": r["max_achieved_rate"],
            "low_p50_ms": low["p50_ms"], "low_p99_ms": low["p99_ms"],
            "low_p999_ms": low["p999_ms"], "low_cpu_us": low["server_cpu_us_per_notification"],
            "faults": sum(s["gaps"] + s["dupes"] + s["disorder"] for s in r["steps"])}


UNICAST = Row(
    name="unicast", title="Unicast: connected users, 10 recipients per request, rate ladder",
    metrics=(Metric("best_rate", "highest sustained rate (p99 < 50 ms), notif/s", "higher"),
             Metric("max_rate", "highest rate stored and delivered, notif/s", "higher"),
             Metric("low_p50_ms", "p50 at the lowest rate, ms", "lower"),
             Metric("low_p99_ms", "p99 at the lowest rate, ms", "lower"),
             Metric("low_p999_ms", "p99.9 at the lowest rate, ms", "lower"),
             Metric("low_cpu_us", "server CPU per notification at the lowest rate, us",
                    "lower"),
             Metric("faults", "gaps + duplicates + disorder", "zero"), OTHERS),
    run=_unicast_run, figures=_unicast_figures)


def _storm_run(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
    return scenarios.storm(sysm, load, sz)


def _storm_figures(r: dict[str, Any]) -> Figures:
    return {"caught_up_s": r["caught_up_s"], "reconnected_s": r["all_reconnected_s"],
            "lost": r["lost"], "duplicated": r["duplicated"],
            "faults": r["gaps"] + r["disorder"], "incomplete": int(r["incomplete"])}


STORM = Row(
    name="storm", title="Reconnect storm: every user dropped at once, back by Last-Event-ID",
    metrics=(Metric("caught_up_s", "all caught up, s", "lower"),
             Metric("reconnected_s", "all reconnected, s", "lower"),
             Metric("lost", "lost", "zero"),
             Metric("duplicated", "duplicated", "zero"),
             Metric("faults", "gaps + disorder", "zero"),
             Metric("incomplete", "runs where not all came back", "zero"), OTHERS),
    run=_storm_run, figures=_storm_figures)



# --- WebSocket against SSE, in the same run (issue 26's WebSocket rows) ------------------
def _both(sysm: System, one: Callable[[System], dict[str, Any]]) -> dict[str, Any]:
    """``one`` over SSE, then over ``/api/ws`` on a fresh server of the same checkout
    (restarted: memory freed by the first transport's clients would otherwise be reused
    by the second's and hide what it costs). The clients differ only in transport."""
    sse = one(sysm)
    sysm.stop()
    sysm.start()
    kind, topic_path, user_path = sysm.kind, sysm.topic_stream_path, sysm.user_stream_path
    sysm.kind = "ws"
    setattr(sysm, "topic_stream_path",  # noqa: B010 - the WS client's paths, this run only
            lambda topic, user: TocsinWS.topic_stream_path(sysm, topic, user))  # type: ignore[arg-type]
    setattr(sysm, "user_stream_path",  # noqa: B010
            lambda user: TocsinWS.user_stream_path(sysm, user))  # type: ignore[arg-type]
    try:
        ws = one(sysm)
    finally:
        sysm.kind = kind
        setattr(sysm, "topic_stream_path", topic_path)  # noqa: B010
        setattr(sysm, "user_stream_path", user_path)  # noqa: B010
    return {"sse": sse, "ws": ws}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def _ws_idle_run(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
    return _both(sysm, lambda s: scenarios.idle(s, load, sz))


def _idle_point(r: dict[str, Any]) -> dict[str, Any]:
    """The largest count held (the 3k of quick, the 10k of full)."""
    return max(r["points"], key=lambda p: p["held"]) if r.get("points") else {}


def _ws_idle_figures(r: dict[str, Any]) -> Figures:
    sse, ws = _idle_point(r["sse"]), _idle_point(r["ws"])
    s_kb, w_kb = sse.get("total_per_conn_kb"), ws.get("total_per_conn_kb")
    return {"sse_kb": s_kb, "ws_kb": w_kb,
            "ws_over_sse_kb": None if s_kb is None or w_kb is None else round(w_kb - s_kb, 2),
            "ws_vs_sse": _ratio(w_kb, s_kb),
            "sse_rss_kb": sse.get("rss_per_conn_kb"), "ws_rss_kb": ws.get("rss_per_conn_kb"),
            "dropped": (sse.get("target", 0) - sse.get("held", 0))
            + (ws.get("target", 0) - ws.get("held", 0))}


WS_IDLE = Row(
    name="ws-idle", title="Idle: memory per connection, WebSocket against SSE (same run)",
    metrics=(Metric("ws_over_sse_kb", "WS minus SSE, KB per connection (target <= 1)",
                    "lower"),
             Metric("ws_vs_sse", "WS / SSE memory per connection", "lower"),
             Metric("ws_kb", "WS: RSS + kernel per connection, KB", "lower"),
             Metric("sse_kb", "SSE: RSS + kernel per connection, KB", "info"),
             Metric("ws_rss_kb", "WS: server RSS per connection, KB", "lower"),
             Metric("sse_rss_kb", "SSE: server RSS per connection, KB", "info"),
             Metric("dropped", "connections not held", "zero"), OTHERS),
    run=_ws_idle_run, figures=_ws_idle_figures)


def _ws_fanout(n: int) -> Row:
    plain = _fanout(n)

    def run(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
        return _both(sysm, lambda s: plain.run(s, load, sz, load_cores))

    def figures(r: dict[str, Any]) -> Figures:
        sse, ws = plain.figures(r["sse"]), plain.figures(r["ws"])
        return {"ws_vs_sse_cpu": _ratio(ws["per_cpu_s"], sse["per_cpu_s"]),
                "ws_per_cpu_s": ws["per_cpu_s"], "sse_per_cpu_s": sse["per_cpu_s"],
                "ws_vs_sse_rate": _ratio(ws["deliveries_per_s"], sse["deliveries_per_s"]),
                "ws_ttl_p99_ms": ws["ttl_p99_ms"], "sse_ttl_p99_ms": sse["ttl_p99_ms"],
                "faults": (ws["faults"] or 0) + (sse["faults"] or 0),
                "undelivered": (ws["undelivered"] or 0) + (sse["undelivered"] or 0)}

    return Row(
        name=f"ws-fanout{n // 1000}k",
        title=f"Fan-out {n:,}: WebSocket against SSE, deliveries per server CPU-second",
        metrics=(Metric("ws_vs_sse_cpu", "WS / SSE deliveries per server CPU-second "
                        "(target >= 0.9)", "higher"),
                 Metric("ws_per_cpu_s", "WS: deliveries per server CPU-second", "higher"),
                 Metric("sse_per_cpu_s", "SSE: deliveries per server CPU-second", "info"),
                 Metric("ws_vs_sse_rate", "WS / SSE deliveries/s (burst)", "higher"),
                 Metric("ws_ttl_p99_ms", "WS: time to last delivery p99, ms", "lower"),
                 Metric("sse_ttl_p99_ms", "SSE: time to last delivery p99, ms", "info"),
                 Metric("faults", "gaps + duplicates + disorder", "zero"),
                 Metric("undelivered", "runs not delivering everything", "zero"), OTHERS),
        run=run, figures=figures, sizes=plain.sizes)


def _bulk_run(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
    return scenarios.bulk(sysm, load, sz)


def _bulk_figures(r: dict[str, Any]) -> Figures:
    # CPU per notification over every step (each step's own figure weighted by what it
    # stored): the cost the issue's ~20 us target is about, whatever the ladder reached
    acked = sum(s["acked"] for s in r["steps"])
    cpu = sum(s["server_cpu_us_per_notification"] * s["acked"] for s in r["steps"])
    top = max(r["steps"], key=lambda s: s["rate"]) if r["steps"] else {}
    return {"best_rate": r["best_rate"], "max_rate": r["max_rate"],
            "cpu_us": round(cpu / acked, 1) if acked else None,
            "top_p99_ms": top.get("p99_ms"),
            "failed": sum(s["failed"] for s in r["steps"])}


BULK = Row(
    name="bulk", title="Bulk publish: 100 distinct notifications per request, durable SQLite",
    metrics=(Metric("best_rate", "best rate with p99 < 100 ms, notif/s", "higher"),
             Metric("max_rate", "highest rate reached, notif/s", "higher"),
             Metric("cpu_us", "server CPU per notification, us", "lower"),
             Metric("top_p99_ms", "p99 at the highest rate, ms", "lower"),
             Metric("failed", "requests not answered 2xx", "zero"), OTHERS),
    run=_bulk_run, figures=_bulk_figures)


ROWS: dict[str, Row] = {r.name: r for r in (_fanout(10_000), _fanout(1_000), UNICAST, STORM,
                                            WS_IDLE, _ws_fanout(10_000), _ws_fanout(1_000),
                                            BULK)}
