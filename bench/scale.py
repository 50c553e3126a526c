"""The machine-wide scale-out row: many idle topic subscribers over several server processes
sharing the port, held for minutes with heartbeats flowing, then one broadcast that every
connection has to receive.

Tocsin runs as ``tocsin serve --workers W --broker redis://...`` (its default 15 s
heartbeat); the floor as ``--procs W`` (SO_REUSEPORT) with its processes relaying each
publish to their siblings. Every client subscribes to one topic (``bench:scale``), so one
publish is a broadcast to all of them. Each server process can hold at most ~19,900
sockets (the 20,000 open-file hard cap), hence W >= target / 16,000; the clients are
spread over load processes of <= 16,000 each, each bound to its own loopback source
address (127.0.0.2, 127.0.0.3, ...: one (source ip, server ip:port) pair has only
``ip_local_port_range`` ~28k ports).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import psutil

from bench.machine import kernel_mem
from bench.runner import Load
from bench.systems import REDIS_URL, System, Tocsin, make_systems

TOPIC = "bench:scale"
PER_SERVER_PROC = 16_000  # target share per server process, below the ~19,900 cap
PER_LOAD_PROC = 16_000
SAMPLE_EVERY = 10.0
CONNECT_CONCURRENCY = 64  # per load process
RAMP_LIMIT_S = 1800.0  # how long the harness waits for the load processes' connects


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def server_procs(target: int) -> int:
    return max(3, math.ceil(target / PER_SERVER_PROC))


def load_procs(target: int) -> int:
    return max(3, math.ceil(target / PER_LOAD_PROC))


def _light(load: Load) -> tuple[int, int]:
    """(events, open) summed over the client processes, without the heavy per-client dump."""
    res = load.all("stats", light=True)
    return sum(r["events"] for r in res), sum(r["open"] for r in res)


def _read_chars(load: Load) -> int:
    """Bytes the client processes read (libuv reads TCP with read(2)): heartbeats show here."""
    tot = 0
    for p in load.processes():
        with contextlib.suppress(psutil.Error, AttributeError):
            tot += p.io_counters().read_chars
    return tot


def _per_process_fds(sysm: System) -> list[int]:
    out = []
    for p in sysm.processes():
        with contextlib.suppress(psutil.Error):
            out.append(p.num_fds())
    return sorted(out, reverse=True)


def hold_and_broadcast(sysm: System, load: Load, target: int, hold_s: float,
                       heartbeat_s: float) -> dict[str, Any]:
    """Connect ``target`` topic subscribers, hold them ``hold_s`` s, publish one event."""
    time.sleep(0.5)
    rss0, k0 = sysm.rss(), kernel_mem()
    t0 = time.monotonic()
    # few connects in flight per load process: a server that accepts slowly then queues
    # them here, not past the client's 30 s connect timeout
    specs = [(f"scale{i}", sysm.topic_stream_path(TOPIC, f"scale{i}"), sysm.kind)
             for i in range(target)]
    nw = len(load.clients)
    srcs = load.sources()
    res = load.all("connect", timeout=RAMP_LIMIT_S, per=[
        {"host": "127.0.0.1", "port": sysm.port, "src": srcs[i], "specs": specs[i::nw],
         "concurrency": CONNECT_CONCURRENCY} for i in range(nw)])
    r = {"fail": sum(x["fail"] for x in res),
         "errors": [e for x in res for e in x["errors"]][:5]}
    ramp_s = time.monotonic() - t0
    time.sleep(2.0)
    _, held = _light(load)
    rss1, k1 = sysm.rss(), kernel_mem()
    out: dict[str, Any] = {
        "target": target, "held": held, "connect_fail": r["fail"], "ramp_s": round(ramp_s, 1),
        "errors": r["errors"][:3], "server_fds": _per_process_fds(sysm),
        "rss_mb": round(rss1 / 2**20, 1),
        "rss_per_conn_kb_after_ramp": round((rss1 - rss0) / max(held, 1) / 1024, 2),
        "kernel_per_conn_kb_after_ramp": round((k1 - k0) / 2 / max(held, 1) / 1024, 2),
        "hold_s": hold_s, "heartbeat_s": heartbeat_s,
    }
    log(f"  ramp: {held}/{target} open in {ramp_s:.1f} s, fds per server process "
        f"{out['server_fds']}")
    # the hold: nothing is published; only heartbeats flow
    c0, rc0, h0 = sysm.cpu_seconds(), _read_chars(load), time.monotonic()
    low = held
    samples: list[tuple[float, int]] = []
    while time.monotonic() - h0 < hold_s:
        time.sleep(min(SAMPLE_EVERY, max(0.0, hold_s - (time.monotonic() - h0))))
        _, now_open = _light(load)
        low = min(low, now_open)
        samples.append((round(time.monotonic() - h0, 1), now_open))
    wall = time.monotonic() - h0
    _, after = _light(load)
    read_bytes = _read_chars(load) - rc0
    beats = held * wall / heartbeat_s if heartbeat_s else 0
    rss2, k2 = sysm.rss(), kernel_mem()
    out.update({
        "held_after_hold": after, "lowest_during_hold": low,
        "dropped_during_hold": held - after, "hold_samples": samples,
        "hold_server_cpu_pct": round(100 * (sysm.cpu_seconds() - c0) / max(wall, 1e-9), 2),
        # what the clients read while nothing was published: heartbeats (and pipe chatter)
        "hold_client_read_mb": round(read_bytes / 2**20, 2),
        "heartbeat_bytes_per_conn_per_interval": round(read_bytes / beats, 1) if beats else None,
        "rss_mb_after_hold": round(rss2 / 2**20, 1),
        "rss_per_conn_kb": round((rss2 - rss0) / max(after, 1) / 1024, 2),
        # both ends of every loopback connection live in this kernel: halve
        "kernel_per_conn_kb": round((k2 - k0) / 2 / max(after, 1) / 1024, 2),
    })
    out["total_per_conn_kb"] = round(out["rss_per_conn_kb"] + out["kernel_per_conn_kb"], 2)
    log(f"  hold {wall:.0f} s: {after} open (lowest {low}), server CPU "
        f"{out['hold_server_cpu_pct']}%, {out['total_per_conn_kb']} KB/conn")
    # the broadcast: one topic event, every open connection must get it exactly once
    load.record(True, track_t=True)
    res = load.pub.call("burst", host="127.0.0.1", port=sysm.port,
                        path=sysm.topic_publish_path(TOPIC), headers=sysm.publish_headers(),
                        n=1)
    t_pub = res["sent"][0]
    deadline = time.monotonic() + 90
    got = 0
    while time.monotonic() < deadline:
        got, _ = _light(load)
        if got >= after:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # late duplicates would show here
    st = load.stats()
    rec = st["per_t"].get(round(float(t_pub), 6))
    out.update({
        "publish_statuses": res.get("statuses"),
        "received": st["events"], "gaps": st["gaps"], "dupes": st["dupes"],
        "disorder": st["disorder"], "closed_by_server": st["closed_by_server"],
        "broadcast_last_delivery_s": round(rec[0] - float(t_pub), 3) if rec else None,
        "open_at_end": st["open"],
    })
    out["all_received"] = (out["held"] >= target and out["received"] >= target
                           and out["dupes"] == 0 and out["dropped_during_hold"] == 0)
    log(f"  broadcast: {out['received']}/{after} received, last delivery "
        f"{out['broadcast_last_delivery_s']} s after the publish")
    load.close_all()
    return out


def scale_run(target: int, hold_s: float, floor_hold_s: float | None = None,
              systems: tuple[str, ...] = ("floor", "tocsin")) -> dict[str, Any]:
    """The row: each system started fresh with ``server_procs(target)`` processes."""
    out: dict[str, Any] = {}
    procs = server_procs(target)
    for name in systems:
        t0 = time.monotonic()
        sysm = make_systems([name])[0]
        sysm.workers = procs
        if isinstance(sysm, Tocsin):
            # several workers need a broker that crosses processes
            sysm.broker = REDIS_URL
            sysm.needs = ("redis",)
            sysm.label = "Tocsin (SQLite, Redis broker)"
        hold = hold_s if name != "floor" or floor_hold_s is None else floor_hold_s
        reason = sysm.available()
        if reason:
            out[name] = {"skipped": reason, "workers": procs}
            continue
        load = Load(load_procs(target), None)
        try:
            log(f"scale: {name} x{procs} server processes, {len(load.clients)} load "
                f"processes -> {target}, hold {hold:.0f} s")
            try:
                sysm.start()
            except RuntimeError as e:
                out[name] = {"error": f"start failed: {str(e)[-800:]}", "workers": procs}
                continue
            try:
                out[name] = hold_and_broadcast(sysm, load, target, hold, 15.0)
            except Exception as e:  # report it in the row rather than lose the run
                out[name] = {"error": repr(e)[:800], "server_log": sysm.log()[-800:]}
                with contextlib.suppress(Exception):
                    load.close_all()
            finally:
                sysm.stop()
        finally:
            load.close()
        out[name].update({"workers": procs, "label": sysm.label,
                          "seconds": round(time.monotonic() - t0, 1)})
    return out


def scale_md(sc: dict[str, Any]) -> str:
    """The row as a markdown table (``results.md``)."""
    if not sc:
        return ""
    lines = ["| System | Server processes | Target | Held after ramp (s) | Hold, s "
             "(heartbeat) | Dropped during hold | Received the broadcast (last at, s) | "
             "Memory/conn KB (RSS + kernel) | Server CPU in hold, % | Row, s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in sc.items():
        label = res.get("label", name)
        if "error" in res or "skipped" in res:
            lines.append(f"| {label} | {res.get('workers', '')} | | "
                         f"{str(res.get('error') or res.get('skipped'))[:160]} "
                         "| | | | | | |")
            continue
        if "hold_s" not in res:  # the older shape (idle points), kept readable
            p = (res.get("points") or [{}])[-1]
            lines.append(f"| {label} | {res.get('workers')} | {p.get('target')} | "
                         f"{p.get('held')} | - | - | - | {p.get('total_per_conn_kb')} | - | "
                         f"{res.get('seconds', '')} |")
            continue
        lines.append(
            f"| {label} | {res['workers']} | {res['target']:,} | {res['held']:,} "
            f"({res['ramp_s']}) | {res['hold_s']:.0f} ({res['heartbeat_s']:.0f} s) | "
            f"{res['dropped_during_hold']} | {res['received']:,} "
            f"({res['broadcast_last_delivery_s']}) | {res['total_per_conn_kb']} "
            f"({res['rss_per_conn_kb']} + {res['kernel_per_conn_kb']}) | "
            f"{res['hold_server_cpu_pct']} | {res.get('seconds', '')} |")
    lines.append("")
    lines.append("Memory per connection is measured at the end of the hold: server RSS "
                 "growth summed over its processes / held + kernel growth (slab + TCP "
                 "pages) / 2 / held. Received: deliveries of the one broadcast (each "
                 "client checks ids: duplicates would be counted).")
    return "\n".join(lines)
