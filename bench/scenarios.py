"""The five measurements, each against one running system with the shared load."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.machine import kernel_mem
from bench.runner import PER_WORKER_MAX, Load
from bench.systems import System


@dataclass
class Sizes:
    idle_ns: tuple[int, ...]
    idle_max: int
    idle_cpu_window: float
    fan_ns: tuple[int, ...]
    fan_latency_events: int
    fan_burst: int
    fan_bursts: int
    uni_users: int
    uni_rates: tuple[int, ...]
    uni_duration: float
    uni_batch: int
    storm_users: int
    storm_rate: float
    storm_before: float
    storm_after: float
    storm_jitter: float
    slow_users: int
    slow_rate: float
    slow_duration: float
    settle: float = 2.0


QUICK = Sizes(idle_ns=(1000, 3000), idle_max=0, idle_cpu_window=2.0, fan_ns=(1000,),
              fan_latency_events=5, fan_burst=10, fan_bursts=1, uni_users=2000,
              uni_rates=(500, 2000), uni_duration=1.2, uni_batch=10, storm_users=1000,
              storm_rate=200, storm_before=0.8, storm_after=1.5, storm_jitter=0.5,
              slow_users=1000, slow_rate=10, slow_duration=1.0, settle=0.7)
SMOKE = Sizes(idle_ns=(50,), idle_max=0, idle_cpu_window=0.2, fan_ns=(50,),
              fan_latency_events=2, fan_burst=3, fan_bursts=1, uni_users=50,
              uni_rates=(100,), uni_duration=0.5, uni_batch=2, storm_users=50,
              storm_rate=50, storm_before=0.3, storm_after=0.5, storm_jitter=0.2,
              slow_users=100, slow_rate=10, slow_duration=0.3, settle=0.2)
FULL = Sizes(idle_ns=(1000, 10000), idle_max=19_900, idle_cpu_window=16.0,
             fan_ns=(1000, 10000), fan_latency_events=12, fan_burst=15, fan_bursts=2,
             uni_users=10000,
             uni_rates=(1000, 2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000),
             uni_duration=2.5,
             uni_batch=10, storm_users=10000, storm_rate=200, storm_before=2.5,
             storm_after=4.0, storm_jitter=1.0, slow_users=10000, slow_rate=5,
             slow_duration=4.0, settle=1.5)


# the criterion for a sustained unicast rate (it was 100 ms before round 2)
UNI_P99_MS = 50.0


def pct(values: list[float] | Any, p: float) -> float | None:
    v = sorted(values)
    if not v:
        return None
    k = min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))
    return float(v[k])


def cpu_pct(cpu0: float, cpu1: float, wall: float) -> float:
    return 100.0 * (cpu1 - cpu0) / max(wall, 1e-9)


def connect_users(sysm: System, load: Load, prefix: str, n: int, *, topic: str | None = None,
                  track_seen: bool = False, start: int = 0) -> dict[str, Any]:
    specs = []
    for i in range(start, start + n):
        user = f"{prefix}{i}"
        path = sysm.topic_stream_path(topic, user) if topic else sysm.user_stream_path(user)
        specs.append((user, path, sysm.kind))
    return load.connect(sysm.port, specs, track_seen=track_seen, ids=sysm.ids)


def capped_by(server_cpu: float, load_cpu: float, load_cores: int) -> str:
    """Which side ran out of CPU (>= 85% of what it had), if any."""
    notes = []
    if server_cpu >= 85:
        notes.append(f"server CPU ({server_cpu:.0f}%)")
    if load_cpu >= 85 * load_cores:
        notes.append(f"load CPU ({load_cpu:.0f}%)")
    return " + ".join(notes) or "neither side saturated"


# --- 1. idle capacity --------------------------------------------------------------
def idle(sysm: System, load: Load, sz: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {"points": []}
    time.sleep(0.5)
    rss0 = sysm.rss()
    k0 = kernel_mem()
    held = 0
    targets = [*sz.idle_ns]
    if sz.idle_max:
        targets.append(sz.idle_max)
    cap_note = ""
    for n in targets:
        if n > PER_WORKER_MAX * len(load.clients):
            cap_note = "load workers"
            break
        r = connect_users(sysm, load, "idle", n - held, start=held)
        time.sleep(sz.settle)
        st = load.stats()
        got = st["open"]
        rss = sysm.rss()
        k = kernel_mem()
        pt = {
            "target": n, "held": got, "fail": r["fail"],
            "connect_s": round(r["elapsed"], 2),
            "rss_mb": round(rss / 2**20, 1),
            "rss_per_conn_kb": round((rss - rss0) / max(got, 1) / 1024, 2),
            # both ends of every loopback connection are on this machine: halve
            "kernel_per_conn_kb": round((k - k0) / 2 / max(got, 1) / 1024, 2),
            "server_fds": sysm.fds(),
            "errors": r["errors"][:3],
        }
        pt["total_per_conn_kb"] = round(pt["rss_per_conn_kb"] + pt["kernel_per_conn_kb"], 2)
        out["points"].append(pt)
        held = got
        if n == max(sz.idle_ns):
            c0, w0 = sysm.cpu_seconds(), time.monotonic()
            time.sleep(sz.idle_cpu_window)
            out["idle_cpu_pct"] = round(cpu_pct(c0, sysm.cpu_seconds(), time.monotonic() - w0), 2)
            out["idle_cpu_n"] = got
            out["idle_dropped"] = n - load.stats()["open"]
        if got < n:
            log = sysm.log()
            if "Too many open files" in log or "EMFILE" in log:
                cap_note = "server open-file limit (20,000 per process)"
            else:
                cap_note = f"connections refused/failed: {r['errors'][:1]}"
            break
    if not cap_note:
        top = targets[-1] if targets else 0
        cap_note = (f"harness target {top} reached (per-process open-file limit is 20,000)"
                    if sz.idle_max or top >= 20_000 else "")
    out["max_held"] = max((p["held"] for p in out["points"]), default=0)
    out["probed_max"] = bool(sz.idle_max)
    out["capped_by"] = cap_note or "not pushed to the limit in this run"
    load.close_all()
    return out


# --- 2. broadcast fan-out ----------------------------------------------------------
def fanout(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sz.fan_ns:
        topic = f"bench:fan{n}"
        r = connect_users(sysm, load, f"fan{n}-", n, topic=topic)
        if r["ok"] < n:
            out[str(n)] = {"error": f"only {r['ok']}/{n} connected: {r['errors'][:2]}"}
            load.close_all()
            continue
        path = sysm.topic_publish_path(topic)
        hdrs = sysm.publish_headers()
        # warm-up event (not recorded)
        load.pub.call("burst", host="127.0.0.1", port=sysm.port, path=path, headers=hdrs, n=1)
        load.wait_events(n, 20)
        # latency: one event at a time, each fully delivered before the next
        load.record(True, track_t=True)
        ttl: list[float] = []
        delivered_ok = True
        for _ in range(sz.fan_latency_events):
            res = load.pub.call("burst", host="127.0.0.1", port=sysm.port, path=path,
                                headers=hdrs, n=1)
            t = res["sent"][0]
            deadline = time.monotonic() + 15
            while True:
                st = load.stats()
                rec = st["per_t"].get(t)
                if rec is not None and rec[1] >= n:
                    ttl.append(rec[0] - t)
                    break
                if time.monotonic() > deadline:
                    delivered_ok = False
                    break
                time.sleep(0.02)
            if not delivered_ok:
                break  # deliveries are being lost: more waiting measures nothing
        st = load.stats()
        lat_all = list(st["lat"])
        # throughput: bursts of back-to-back publishes
        rates: list[float] = []
        scpu: list[float] = []
        lcpu: list[float] = []
        per_cpu: list[float] = []
        for _b in range(sz.fan_bursts):
            load.record(True, track_t=True)
            c0s, c0l, w0 = sysm.cpu_seconds(), load.cpu_seconds(), time.monotonic()
            res = load.pub.call("burst", host="127.0.0.1", port=sysm.port, path=path,
                                headers=hdrs, n=sz.fan_burst, concurrency=4)
            exp = n * sz.fan_burst
            st = load.wait_events(exp, 60 if delivered_ok else 5)
            wall = time.monotonic() - w0
            first = min(res["sent"])
            last = max((v[0] for v in st["per_t"].values()), default=first)
            got = st["events"]
            rates.append(got / max(last - first, 1e-9))
            per_cpu.append(got / max(sysm.cpu_seconds() - c0s, 1e-9))
            scpu.append(cpu_pct(c0s, sysm.cpu_seconds(), wall))
            lcpu.append(cpu_pct(c0l, load.cpu_seconds(), wall))
            if got < exp:
                delivered_ok = False
        st = load.stats()
        out[str(n)] = {
            "n": n,
            "ttl_p50_ms": _ms(pct(ttl, 50)), "ttl_p99_ms": _ms(pct(ttl, 99)),
            "ttl_max_ms": _ms(max(ttl) if ttl else None),
            "ttl_samples": ttl,
            "lat_p50_ms": _ms(pct(lat_all, 50)), "lat_p99_ms": _ms(pct(lat_all, 99)),
            "lat_sample": lat_all[:: max(1, len(lat_all) // 5000)],
            "deliveries_per_s": statistics.median(rates) if rates else None,
            "deliveries_per_s_min": min(rates) if rates else None,
            "deliveries_per_s_max": max(rates) if rates else None,
            "deliveries_per_server_cpu_s": statistics.median(per_cpu) if per_cpu else None,
            "server_cpu_pct": round(statistics.median(scpu), 1) if scpu else None,
            "load_cpu_pct": round(statistics.median(lcpu), 1) if lcpu else None,
            "all_delivered": delivered_ok,
            "gaps": st["gaps"], "dupes": st["dupes"], "disorder": st["disorder"],
            "capped_by": capped_by(statistics.median(scpu) if scpu else 0,
                                   statistics.median(lcpu) if lcpu else 0, load_cores),
        }
        load.close_all()
    return out


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 2)


# --- 3. unicast ---------------------------------------------------------------------
def unicast(sysm: System, load: Load, sz: Sizes, load_cores: int) -> dict[str, Any]:
    n = sz.uni_users
    r = connect_users(sysm, load, "uni", n)
    if r["ok"] < n:
        load.close_all()
        return {"error": f"only {r['ok']}/{n} connected: {r['errors'][:2]}"}
    users = [f"uni{i}" for i in range(n)]
    path = sysm.user_publish_path()
    hdrs = sysm.publish_headers()
    steps = []
    best = 0.0
    for rate in sz.uni_rates:
        load.record(True)
        c0s, c0l, w0 = sysm.cpu_seconds(), load.cpu_seconds(), time.monotonic()
        res = load.pub.call("unicast", host="127.0.0.1", port=sysm.port, path=path,
                            headers=hdrs, users=users, rate=rate, duration=sz.uni_duration,
                            batch=sz.uni_batch, seed=rate)
        st = load.wait_events(res["acked"], 20, settle=0.3)
        wall = time.monotonic() - w0
        cpu_s = sysm.cpu_seconds() - c0s
        lat = list(st["lat"])
        step = {
            "rate": rate, "acked": res["acked"], "delivered": st["events"],
            "achieved_rate": round(res["acked"] / max(res["send_elapsed"], 1e-9), 1),
            "skipped_requests": res["skipped_requests"],
            "statuses": res["statuses"],
            "p50_ms": _ms(pct(lat, 50)), "p99_ms": _ms(pct(lat, 99)),
            "p999_ms": _ms(pct(lat, 99.9)),
            "ack_p99_ms": _ms(res["ack_p99"]),
            "gaps": st["gaps"], "dupes": st["dupes"], "disorder": st["disorder"],
            "server_cpu_pct": round(100 * cpu_s / max(wall, 1e-9), 1),
            "server_cpu_us_per_notification": round(1e6 * cpu_s / max(res["acked"], 1), 1),
            "load_cpu_pct": round(cpu_pct(c0l, load.cpu_seconds(), wall), 1),
            "lat_sample": lat[:: max(1, len(lat) // 5000)],
        }
        ok = (step["achieved_rate"] >= 0.95 * rate and step["p99_ms"] is not None
              and step["p99_ms"] < UNI_P99_MS and st["events"] >= res["acked"] > 0
              and not res["skipped_requests"])
        step["sustained"] = ok
        steps.append(step)
        if ok:
            best = max(best, float(rate))
        keeps_up = (step["achieved_rate"] >= 0.9 * rate and st["events"] >= res["acked"]
                    and not res["skipped_requests"])
        if not keeps_up:
            break  # throughput, not only latency, gave out: higher rates say nothing new
    last = steps[-1] if steps else {}
    load.close_all()
    top = max((s["achieved_rate"] for s in steps), default=0.0)
    return {"users": n, "batch": sz.uni_batch, "steps": steps, "best_rate": best,
            "max_achieved_rate": top,
            "capped_by": (capped_by(last.get("server_cpu_pct", 0), last.get("load_cpu_pct", 0),
                                    load_cores)
                          if steps and not last["sustained"] else "top of the rate ladder")}


# --- 4. reconnect storm -------------------------------------------------------------
def storm(sysm: System, load: Load, sz: Sizes) -> dict[str, Any]:
    n = sz.storm_users
    r = connect_users(sysm, load, "storm", n, track_seen=True)
    if r["ok"] < n:
        load.close_all()
        return {"error": f"only {r['ok']}/{n} connected: {r['errors'][:2]}"}
    users = [f"storm{i}" for i in range(n)]
    load.record(True, detail=True)
    total = sz.storm_before + sz.storm_after
    load.pub.send("unicast", host="127.0.0.1", port=sysm.port, path=sysm.user_publish_path(),
                  headers=sysm.publish_headers(), users=users, rate=sz.storm_rate,
                  duration=total, batch=1, log=True, seed=7)
    time.sleep(sz.storm_before)
    t_drop = time.monotonic()
    rec = load.all("drop_reconnect", jitter=sz.storm_jitter, detail=True, wait_s=30.0,
                   timeout=120)
    pub = load.pub.recv(timeout=120)
    time.sleep(sz.settle)
    st = load.stats(detail=True)
    published: dict[str, list[float]] = {}
    for t, recips, status in pub["entries"]:
        if 200 <= status < 300:
            for u in recips:
                published.setdefault(u, []).append(round(t, 6))
    reconnected_at: dict[str, float] = {}
    for x in rec:
        reconnected_at.update(x["at"])
    lost = 0
    dup_t = 0
    caught = t_drop
    for u, ts in published.items():
        got = st["detail"].get(u, [])
        rt: dict[float, float] = {}
        for _eid, tb, recv in got:
            tk = round(float(tb), 6)
            if tk in rt:
                dup_t += 1
            rt[tk] = recv
        back = reconnected_at.get(u)
        if back is not None:
            # caught up: reconnected and holding everything published before that moment
            caught = max(caught, back)
        for t in ts:
            if t not in rt:
                lost += 1
            elif back is not None and t <= back:
                caught = max(caught, rt[t])
    if reconnected_at:
        caught = max(caught, max(reconnected_at.values()))
    recon = [x["all_reconnected_s"] for x in rec if x["all_reconnected_s"] is not None]
    incomplete = sum(x["fail"] for x in rec) > 0
    load.close_all()
    return {
        "incomplete": incomplete,
        "users": n, "published": sum(len(v) for v in published.values()),
        "reconnected": sum(x["reconnected"] for x in rec),
        "reconnect_fail": sum(x["fail"] for x in rec),
        "all_reconnected_s": round(max(recon), 2) if recon else None,
        "caught_up_s": round(caught - t_drop, 2),
        "lost": lost, "duplicated": max(dup_t, st["dupes"]), "gaps": st["gaps"],
        "disorder": st["disorder"], "resets": st["resets"],
        "publish_statuses": pub["statuses"],
    }


# --- 5. slow consumers --------------------------------------------------------------
def slow(sysm: System, load: Load, sz: Sizes) -> dict[str, Any]:
    n = sz.slow_users
    topic = "bench:slow"
    r = connect_users(sysm, load, "slow", n, topic=topic)
    if r["ok"] < n:
        load.close_all()
        return {"error": f"only {r['ok']}/{n} connected: {r['errors'][:2]}"}
    path = sysm.topic_publish_path(topic)
    hdrs = sysm.publish_headers()
    n_ev = max(1, int(sz.slow_rate * sz.slow_duration))

    def phase() -> tuple[float | None, float, float]:
        load.record(True)
        rss_before = sysm.rss()
        peak = rss_before
        load.pub.send("burst", host="127.0.0.1", port=sysm.port, path=path, headers=hdrs,
                      n=n_ev, concurrency=1, gap=1.0 / sz.slow_rate)
        while load.pub.conn.poll(0.2) is False:
            peak = max(peak, sysm.rss())
        load.pub.recv()
        time.sleep(sz.settle / 2)
        peak = max(peak, sysm.rss())
        st = load.stats()
        return pct(list(st["lat"]), 99), rss_before, peak

    p99_base, _, _peak_base = phase()
    slow_keys = [f"slow{i}" for i in range(0, n, 100)]
    load.all("pause", keys=slow_keys)
    k0 = kernel_mem()
    p99_slow, rss0, peak_slow = phase()
    k1 = kernel_mem()
    st = load.stats()
    load.close_all()
    return {
        "users": n, "paused": len(slow_keys), "events": n_ev, "rate": sz.slow_rate,
        "p99_base_ms": _ms(p99_base), "p99_with_slow_ms": _ms(p99_slow),
        "rss_growth_mb": round((peak_slow - rss0) / 2**20, 1),
        "kernel_growth_mb": round((k1 - k0) / 2**20, 1),
        "server_closed_slow": st["closed_by_server"],
    }
