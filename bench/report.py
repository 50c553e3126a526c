"""Markdown table and matplotlib plots from the raw results (medians, min-max, ratios)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

LABELS = {
    "tocsin": "Tocsin (SQLite)",
    "tocsin-ws": "Tocsin WS (SQLite)",
    "tocsin-pg": "Tocsin (PG+Redis)",
    "tocsin-pg2": "Tocsin (PG+Redis, 2 workers)",
    "tocsin-normal": "Tocsin (SQLite sync=normal)",
    "floor": "Floor",
    "typical": "Typical",
    "typical-redis": "Typical+Redis",
    "socketio": "Socket.IO",
    "nchan": "Nchan",
}
ORDER = ["tocsin", "tocsin-ws", "tocsin-pg", "tocsin-pg2", "tocsin-normal", "floor", "typical",
         "typical-redis", "socketio", "nchan"]
PEERS = ["typical", "typical-redis", "socketio", "nchan"]


def brief(scen: str, res: dict[str, Any]) -> str:
    if "error" in res or "skipped" in res:
        return str(res.get("error") or res.get("skipped"))[:300]
    if scen == "idle":
        pts = res["points"]
        return "; ".join(f"{p['held']} held, {p['total_per_conn_kb']} KB/conn" for p in pts) + \
            f"; idle cpu {res.get('idle_cpu_pct')}%; cap: {res['capped_by']}"
    if scen == "fanout":
        return "; ".join(
            f"N={k}: {v.get('deliveries_per_s', 0) or 0:,.0f}/s ttl p99 {v.get('ttl_p99_ms')} ms"
            f" srv {v.get('server_cpu_pct')}% load {v.get('load_cpu_pct')}%"
            f" ok={v.get('all_delivered')} gaps={v.get('gaps')}"
            if "error" not in v else f"N={k}: {v['error']}"
            for k, v in res.items() if isinstance(v, dict))
    if scen == "unicast":
        return f"best {res['best_rate']}/s; " + "; ".join(
            f"{s['rate']}/s: ach {s['achieved_rate']} p99 {s['p99_ms']} ms"
            f" srv {s['server_cpu_pct']}%" for s in res["steps"])
    if scen == "storm":
        return (f"{'INCOMPLETE (not all reconnected in time), ' if res.get('incomplete') else ''}"
                f"caught up {res['caught_up_s']} s, reconnected {res['all_reconnected_s']} s, "
                f"lost {res['lost']}, dup {res['duplicated']}, published {res['published']}")
    if scen == "slow":
        if "slow_consistent" not in res:  # a result from before the reworked row
            return (f"p99 {res['p99_base_ms']} -> {res['p99_with_slow_ms']} ms, "
                    f"rss +{res['rss_growth_mb']} MB")
        return (f"{res['paused']}/{res['users']} stop reading, {res['events']} events of "
                f"~{res['pad_bytes'] // 1000} KB at {res['rate']}/s: others' p99 "
                f"{res['p99_base_ms']} -> {res['p99_with_slow_ms']} ms; rss "
                f"+{res['rss_growth_slow_phase_mb']} MB while they do not read, "
                f"+{res['rss_growth_mb']} MB until caught up; bound reached {res['bound_reached']} "
                f"(overflows {res['outbox_overflows']:.0f}); slow consistent "
                f"{res['slow_consistent']}/{res['paused']} (in order {res['slow_all_in_order']}, "
                f"reset {res['slow_reset']}, closed {res['slow_closed']}, reconnected "
                f"{res['slow_reconnected']}, missing {res['slow_missing']}, dupes "
                f"{res['slow_dupes']}); resume {res['resume_s']} s; srv "
                f"{res['server_cpu_pct']}% load {res['load_cpu_pct']}%")
    if scen == "bulk":
        how = "bulk API" if res["bulk_api"] else "one at a time"
        return (f"best {res['best_rate']:,.0f}/s ({how}); "
                + "; ".join(f"{s['senders']} senders: {s['rate']:,.0f}/s p99 {s['p99_ms']} ms"
                            f" failed {s['failed']} srv {s['server_cpu_pct']}%"
                            for s in res["steps"]))
    return ""


Getter = Callable[[dict[str, Any]], float | None]
FAIL = float("nan")


def compact(obj: Any, samples: int = 2000) -> Any:
    """Round floats and thin long sample lists so raw.json stays small enough for git."""
    if isinstance(obj, float):
        return float(f"{obj:.6g}")
    if isinstance(obj, list):
        if len(obj) > samples and all(isinstance(x, float) for x in obj[:10]):
            step = len(obj) / samples
            obj = [obj[int(i * step)] for i in range(samples)]
        return [compact(x, samples) for x in obj]
    if isinstance(obj, dict):
        return {k: compact(v, samples) for k, v in obj.items()}
    return obj


def fails(raw: dict[str, Any], system: str, scen: str, get: Getter) -> int:
    return sum(1 for v in _all_values(raw, system, scen, get) if v != v)


def values(raw: dict[str, Any], system: str, scen: str, get: Getter) -> list[float]:
    return [v for v in _all_values(raw, system, scen, get) if v == v]


def _all_values(raw: dict[str, Any], system: str, scen: str, get: Getter) -> list[float]:
    out = []
    for rr in raw["rounds"]:
        res = rr.get(system, {}).get(scen)
        if not res or "error" in res or "skipped" in res:
            continue
        try:
            v = get(res)
        except (KeyError, TypeError, IndexError, ValueError):
            v = None
        if v is not None:
            out.append(float(v))
    return out


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        s = f"{v:,.0f}"
    elif abs(v) >= 100:
        s = f"{v:.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.2f}"
    return s + unit


def cell(vs: list[float], unit: str = "") -> str:
    if not vs:
        return "-"
    med = statistics.median(vs)
    if len(vs) > 1 and min(vs) != max(vs):
        return f"{fmt(med, unit)} ({fmt(min(vs))}-{fmt(max(vs))})"
    return fmt(med, unit)


def _bulk_p99(res: dict[str, Any]) -> float | None:
    steps = res["steps"]
    at = [s for s in steps if s["sustained"] and s["rate"] == res["best_rate"]]
    return (at or steps)[0]["p99_ms"] if steps else None


def _uni_at_best(res: dict[str, Any], key: str) -> float | None:
    steps = [s for s in res["steps"] if s["sustained"]] or res["steps"][:1]
    return steps[-1][key] if steps else None


def rows() -> list[tuple[str, str, Getter, str, bool | None]]:
    """(label, scenario, getter, unit, higher_is_better; None: a count, no ratios)"""
    def fan(n: str, key: str) -> Getter:
        # a run that did not deliver every event to every client counts as a failure
        def g(r: dict[str, Any]) -> float | None:
            v = r[n]
            ok = v.get("all_delivered", True) and not v.get("gaps") and not v.get("dupes")
            return v[key] if ok else FAIL
        return g

    def idle_at(n: int, key: str) -> Getter:
        def g(r: dict[str, Any]) -> float | None:
            for p in r["points"]:
                if p["target"] == n:
                    return float(p[key])
            return None
        return g

    return [
        ("Idle: connections held by one process (probed in round 1)", "idle",
         lambda r: r["max_held"] if r.get("probed_max", True) else None, "", True),
        ("Idle: memory per connection at 10k (RSS + kernel), KB", "idle",
         idle_at(10000, "total_per_conn_kb"), "", False),
        ("Idle: server RSS per connection at 10k, KB", "idle",
         idle_at(10000, "rss_per_conn_kb"), "", False),
        # --quick holds 1k and 3k only (the 10k rows above stay empty there)
        ("Idle: memory per connection at 3k (quick sizes; RSS + kernel), KB", "idle",
         idle_at(3000, "total_per_conn_kb"), "", False),
        ("Idle: server CPU at 10k (15 s heartbeats), %", "idle",
         lambda r: r["idle_cpu_pct"], "", False),
        ("Fan-out 1k: deliveries/s (burst)", "fanout", fan("1000", "deliveries_per_s"), "", True),
        ("Fan-out 1k: deliveries per server CPU-second", "fanout",
         fan("1000", "deliveries_per_server_cpu_s"), "", True),
        ("Fan-out 1k: time to last delivery p99, ms", "fanout", fan("1000", "ttl_p99_ms"), "",
         False),
        ("Fan-out 10k: deliveries/s (burst)", "fanout", fan("10000", "deliveries_per_s"), "",
         True),
        ("Fan-out 10k: deliveries per server CPU-second", "fanout",
         fan("10000", "deliveries_per_server_cpu_s"), "", True),
        ("Fan-out 10k: time to last delivery p50, ms", "fanout", fan("10000", "ttl_p50_ms"), "",
         False),
        ("Fan-out 10k: time to last delivery p99, ms", "fanout", fan("10000", "ttl_p99_ms"), "",
         False),
        ("Unicast 10k users: highest sustained rate (p99<50 ms), notif/s", "unicast",
         lambda r: r["best_rate"], "", True),
        ("Unicast: highest rate stored and delivered (any latency), notif/s", "unicast",
         lambda r: r["max_achieved_rate"], "", True),
        ("Unicast at the sustained rate (else the lowest): p50, ms", "unicast",
         lambda r: _uni_at_best(r, "p50_ms"), "", False),
        ("... p99, ms", "unicast", lambda r: _uni_at_best(r, "p99_ms"), "",
         False),
        ("... p99.9, ms", "unicast", lambda r: _uni_at_best(r, "p999_ms"), "",
         False),
        ("Unicast: server CPU per notification at the lowest rate, us", "unicast",
         lambda r: r["steps"][0]["server_cpu_us_per_notification"], "", False),
        ("Bulk publish: distinct notifications stored/s, 100 per request, p99 < 100 ms "
         "(Tocsin: POST /api/notifications/bulk; peers: 100 single publishes, no bulk API, "
         "not durable)", "bulk", lambda r: r["best_rate"], "", True),
        ("... p99 of a 100-notification request at that rate (else the first step), ms",
         "bulk", _bulk_p99, "", False),
        ("Reconnect storm 10k: all caught up, s", "storm",
         lambda r: FAIL if r.get("incomplete") else r["caught_up_s"], "", False),
        ("Reconnect storm: lost", "storm", lambda r: r["lost"], "", False),
        ("Reconnect storm: duplicated", "storm", lambda r: r["duplicated"], "", False),
        ("Slow consumers (4 % stop reading, large events): others' p99 before, ms", "slow",
         lambda r: r["p99_base_ms"], "", False),
        ("... others' p99 while the slow ones do not read, ms", "slow",
         lambda r: r["p99_with_slow_ms"], "", False),
        ("... server RSS growth while they do not read (peak - before), MB", "slow",
         lambda r: r.get("rss_growth_slow_phase_mb", r["rss_growth_mb"]), "", False),
        ("... server RSS growth until they caught up again, MB", "slow",
         lambda r: r["rss_growth_mb"] if "slow_consistent" in r else None, "", False),
        # counts, no ratios (higher=None)
        ("... server's per-connection bound reached (1: it closed, reset or left them to "
         "the store)", "slow", lambda r: int(r["bound_reached"]), "", None),
        ("... slow clients consistent after reading again (every event in order, or "
         "reset)", "slow", lambda r: r["slow_consistent"], "", None),
        ("... of them: reset (refetch)", "slow", lambda r: r["slow_reset"], "", None),
        ("... of them: closed by the server, resumed by Last-Event-ID", "slow",
         lambda r: r["slow_closed"], "", None),
    ]


def count_cell(vs: list[float]) -> str:
    """A count: median as an integer (min-max when rounds differ)."""
    if not vs:
        return "-"
    med = f"{statistics.median(vs):,.0f}"
    return f"{med} ({min(vs):,.0f}-{max(vs):,.0f})" if min(vs) != max(vs) else med


def _with_fails(text: str, n: int) -> str:
    if not n:
        return text
    return f"FAIL x{n}" if text == "-" else f"{text} (+{n} FAIL)"


def adv(t: list[float], p: list[float], higher: bool) -> str:
    """Tocsin's advantage: >1 means Tocsin is ahead (for either direction of metric)."""
    if not t or not p:
        return "-"
    a, b = statistics.median(t), statistics.median(p)
    if higher:
        return f"{a / b:.2f}x" if b else "-"
    if a == 0 and b == 0:
        return "="
    return f"{b / a:.2f}x" if a else "∞"


def _ws_peers(present: list[str]) -> list[str]:
    """The WebSocket transport's ratio columns: to Tocsin's SSE and to Socket.IO."""
    if "tocsin-ws" not in present:
        return []
    return [p for p in ("tocsin", "socketio") if p in present]


def table(raw: dict[str, Any]) -> str:
    present = [s for s in ORDER if any(s in rr for rr in raw["rounds"])]
    peers = [p for p in PEERS if p in present]
    hdr = ["Metric", *(LABELS[s] for s in present)]
    if "tocsin" in present:
        if "floor" in present:
            hdr.append("Tocsin/floor")
        hdr += [f"vs {LABELS[p]}" for p in peers]
    ws_vs = _ws_peers(present)
    hdr += [f"WS vs {LABELS[p] if p != 'tocsin' else 'SSE'}" for p in ws_vs]
    lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for label, scen, get, unit, higher in rows():
        vals = {s: values(raw, s, scen, get) for s in present}
        nfail = {s: fails(raw, s, scen, get) for s in present}
        if not any(vals.values()) and not any(nfail.values()):
            continue
        row = [label, *(_with_fails(cell(vals[s], unit) if higher is not None
                                    else count_cell(vals[s]), nfail[s]) for s in present)]
        if higher is None:  # a count: ratios say nothing
            row += ["-"] * (len(hdr) - len(row))
            lines.append("| " + " | ".join(row) + " |")
            continue
        if "tocsin" in present:
            t = vals["tocsin"]
            if "floor" in present:
                row.append(adv(t, vals["floor"], higher))
            row += [adv(t, vals[p], higher) for p in peers]
        row += [adv(vals["tocsin-ws"], vals[p], higher) for p in ws_vs]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def caps(raw: dict[str, Any]) -> str:
    out = []
    for rnd, rr in enumerate(raw["rounds"], 1):
        for s in ORDER:
            for scen, res in rr.get(s, {}).items():
                if "skipped" in res:
                    out.append(f"- round {rnd}, {LABELS[s]}, {scen}: skipped ({res['skipped']})")
                    continue
                if "error" in res:
                    out.append(f"- round {rnd}, {LABELS[s]}, {scen}: ERROR {res['error'][:200]}")
                    continue
                if scen == "idle":
                    out.append(f"- round {rnd}, {LABELS[s]}, idle: held {res['max_held']}; "
                               f"capped by {res['capped_by']}")
                elif scen == "fanout":
                    for n, v in res.items():
                        if isinstance(v, dict) and "capped_by" in v:
                            out.append(f"- round {rnd}, {LABELS[s]}, fan-out {n}: server CPU "
                                       f"{v['server_cpu_pct']}%, load CPU {v['load_cpu_pct']}%"
                                       f" -> {v['capped_by']}; all delivered "
                                       f"{v['all_delivered']}, gaps {v['gaps']}, dupes "
                                       f"{v['dupes']}")
                elif scen == "unicast":
                    last = res["steps"][-1] if res["steps"] else {}
                    out.append(f"- round {rnd}, {LABELS[s]}, unicast: best "
                               f"{res['best_rate']:.0f}/s; last step {last.get('rate')}/s "
                               f"achieved {last.get('achieved_rate')}/s p99 "
                               f"{last.get('p99_ms')} ms, server CPU "
                               f"{last.get('server_cpu_pct')}%, load CPU "
                               f"{last.get('load_cpu_pct')}% -> {res['capped_by']}")
                elif scen == "slow" and "slow_consistent" in res:
                    out.append(f"- round {rnd}, {LABELS[s]}, slow consumers: "
                               f"{brief(scen, res)} -> {res['capped_by']}")
    return "\n".join(out)


def scale_md(raw: dict[str, Any]) -> str:
    from bench.scale import scale_md as table_md

    return table_md(raw.get("scale") or {})


def machine_md(meta: dict[str, Any]) -> str:
    pk = ", ".join(f"{k} {v}" for k, v in meta["packages"].items())
    return (f"- {meta['cores']} cores ({meta['cpu']}), {meta['memory_gib']} GiB, Linux "
            f"{meta['kernel']}, Python {meta['python']}, open files {meta['nofile']}\n"
            f"- server pinned to CPUs {meta['server_cpus']}, load (clients + publisher, "
            f"{meta['load_workers']} client processes) to {meta['load_cpus']}\n"
            f"- load average at start {tuple(round(x, 2) for x in meta['loadavg_at_start'])}, "
            f"at end {tuple(round(x, 2) for x in meta.get('loadavg_at_end', ()))} "
            "(other agents share this machine: numbers are noisy)\n"
            f"- mode {meta['mode']}, {meta['rounds']} round(s), {meta.get('elapsed_s')} s, "
            f"git {meta['git']}, started {meta['started']}\n"
            + (f"- Tocsin ran from {meta['tocsin_tree']}\n" if meta.get("tocsin_tree") else "")
            + f"- {pk}")


def plots(raw: dict[str, Any], out: Path, suffix: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    last = raw["rounds"][-1] if raw["rounds"] else {}
    # latency CDFs: fan-out per-delivery latency at the largest N, and unicast at step 1
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for s in ORDER:
        fo = last.get(s, {}).get("fanout", {})
        ns = [k for k, v in fo.items() if isinstance(v, dict) and v.get("lat_sample")]
        if ns:
            n = max(ns, key=int)
            xs = sorted(x * 1000 for x in fo[n]["lat_sample"])
            axes[0].plot(xs, [i / len(xs) for i in range(len(xs))],
                         label=f"{LABELS[s]} (N={n})")
        un = last.get(s, {}).get("unicast", {})
        if un.get("steps"):
            st = un["steps"][0]
            xs = sorted(x * 1000 for x in st["lat_sample"])
            if xs:
                axes[1].plot(xs, [i / len(xs) for i in range(len(xs))],
                             label=f"{LABELS[s]} ({st['rate']}/s)")
    axes[0].set_title("Broadcast: publish-to-deliver latency CDF")
    axes[1].set_title("Unicast: publish-to-deliver latency CDF")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("ms (log)")
        ax.set_ylabel("fraction of deliveries")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / f"latency_cdf{suffix}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    made.append(p.name)

    # memory per connection vs N
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in ORDER:
        idle = last.get(s, {}).get("idle", {})
        pts = idle.get("points") or []
        if pts:
            ax.plot([q["held"] for q in pts], [q["total_per_conn_kb"] for q in pts], "o-",
                    label=LABELS[s])
    ax.axhline(20, color="grey", ls="--", lw=1, label="target 20 KB")
    ax.set_xscale("log")
    ax.set_xlabel("idle connections held")
    ax.set_ylabel("KB per connection (server RSS + kernel)")
    ax.set_title("Memory per idle connection")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / f"memory_per_conn{suffix}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    made.append(p.name)

    # deliveries per second
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ns = sorted({k for rr in raw["rounds"] for s in rr for k, v in
                 rr[s].get("fanout", {}).items() if isinstance(v, dict)}, key=int)
    systems = [s for s in ORDER if any("fanout" in rr.get(s, {}) for rr in raw["rounds"])]
    width = 0.8 / max(len(systems), 1)
    for i, s in enumerate(systems):
        meds, lo, hi = [], [], []
        for n in ns:
            vs = values(raw, s, "fanout", lambda r, n=n: r[n]["deliveries_per_s"])
            m = statistics.median(vs) if vs else 0
            meds.append(m)
            lo.append(m - (min(vs) if vs else 0))
            hi.append((max(vs) if vs else 0) - m)
        xs = [j + i * width for j in range(len(ns))]
        ax.bar(xs, meds, width, yerr=[lo, hi], label=LABELS[s], capsize=3)
    ax.set_xticks([j + width * (len(systems) - 1) / 2 for j in range(len(ns))])
    ax.set_xticklabels([f"N={n}" for n in ns])
    ax.set_ylabel("deliveries / s (median, min-max)")
    ax.set_title("Broadcast fan-out throughput")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / f"deliveries_per_s{suffix}.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    made.append(p.name)
    return made


def write(raw: dict[str, Any], out: Path, quick: bool = False) -> str:
    suffix = "-quick" if quick else ""
    made = plots(raw, out, suffix)
    md = [f"# Tocsin benchmark results ({raw['meta']['mode']})", "",
          "Medians over rounds, (min-max) where rounds differ. Ratio columns give Tocsin's "
          "advantage: > 1x means Tocsin (SQLite) is ahead, for both higher-is-better and "
          "lower-is-better rows (for latency and memory the ratio is peer / Tocsin). "
          "'WS vs' columns: the same for Tocsin over WebSocket (`/api/ws`, one "
          "subscription per socket) against Tocsin's SSE and against Socket.IO. "
          "Peers other than Tocsin keep everything in memory (no durable store). "
          "FAIL: not every client received every event, or (storm) not every client was "
          "back within the harness's wait; see what capped each run. "
          "'-': not measured for that system.", "",
          table(raw), ""]
    if any("nchan" in rr for rr in raw["rounds"]):
        md[2] += (" Nchan (C, nginx) keeps messages in its memory store only (not durable). "
                  "Its ids (`<time>:<index>`) are ordered but not consecutive: its clients "
                  "check order and duplicates, but a gap cannot show in such ids, so for "
                  "Nchan loss is counted from deliveries against what was published "
                  "(fan-out: every client got every event; unicast: delivered >= "
                  "acknowledged; storm: each user's log), and its 'gaps' are always 0.")
    sc = scale_md(raw)
    if sc:
        md += ["## Machine-wide scale-out (several server processes sharing the port, "
               "idle with heartbeats, then one broadcast)", "",
               sc, ""]
    md += ["## What capped each run", "", caps(raw), "", "## Machine", "",
           machine_md(raw["meta"]), "", "## Plots", ""]
    md += [f"![{m}]({m})" for m in made]
    text = "\n".join(md) + "\n"
    (out / f"results{suffix}.md").write_text(text)
    if not quick and out.resolve() == RESULTS.resolve():
        update_readme(raw)
    return text


RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(raw: dict[str, Any]) -> None:
    """Put the latest full run's table and one plot into bench/README.md."""
    if not README.exists():
        return
    text = README.read_text()
    if START not in text or END not in text:
        return
    meta = raw["meta"]
    block = "\n".join([
        START, "",
        f"Latest full run: {meta['started']}, git {meta['git']}, {meta['rounds']} rounds, "
        f"load average {tuple(round(x, 1) for x in meta['loadavg_at_start'])} at start "
        "(shared machine). Details, what capped each run and machine facts: "
        "[results/results.md](results/results.md).", "",
        table(raw), "",
        "![deliveries per second](results/deliveries_per_s.png)", "",
        END])
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(head + block + tail)
