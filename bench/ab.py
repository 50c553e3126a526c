"""``python -m bench.ab``: Tocsin against Tocsin, two checkouts, interleaved.

Issue 23 item 7 compares the tree before a refactor ("old", side A) with the tree after it
("new", side B) on the same machine. Each checkout runs its own ``tocsin serve`` from its
own ``.venv``; the harness (load generator, publisher, scenarios) is this tree's, so only
the server differs. Every (round, row, side) is a fresh server process, and the two sides
of a row run back to back (A B, A B, ...) so that drift in the machine's load (other
jobs) hits both about equally. Only the ``tocsin`` system (SQLite + ``memory://``) runs:
no peer, no PostgreSQL or Redis is needed.

Prints, per row and metric, each side's median and min-max over the rounds and the ratio
new/old of the medians; writes every number to ``bench/results/ab-<size>-<time>.json``
(rewritten after each run, so an interrupted A/B keeps what it measured) and the table to
the ``.md`` beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.ab_rows import OTHERS, ROWS, Row
from bench.ab_table import table
from bench.contention import OthersMeter, wait_quiet
from bench.machine import facts
from bench.runner import Load, split_cpus
from bench.systems import ROOT, Tocsin

SIZES = {"quick": scenarios.QUICK, "full": scenarios.FULL, "smoke": scenarios.SMOKE}
DEFAULT_ROWS = "fanout10k,unicast,storm"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class CheckoutTocsin(Tocsin):
    """``tocsin serve`` (SQLite, memory broker) from another checkout and its ``.venv``."""

    def __init__(self, side: str, checkout: Path) -> None:
        super().__init__("tocsin", f"Tocsin ({side}: {checkout})", durable=True)
        self.checkout = checkout

    def python(self) -> str:
        return str(self.checkout / ".venv" / "bin" / "python")

    def command(self) -> list[str]:
        return [self.python(), *super().command()[1:]]

    def cwd(self) -> str:
        return str(self.checkout)

    def env(self) -> dict[str, str]:
        # the checkout alone on the path: not this tree's tocsin, not BENCH_TOCSIN_ROOT's
        return {**super().env(), "PYTHONPATH": str(self.checkout)}


def describe(side: str, checkout: Path) -> dict[str, Any]:
    """The checkout's commit, whether its server code has uncommitted changes, which ``tocsin``
    its server will import (refuses a venv that resolves to another tree)."""
    sysm = CheckoutTocsin(side, checkout)
    if not Path(sysm.python()).is_file():
        raise SystemExit(f"{side}: no {sysm.python()} (python3 -m venv .venv && "
                         ".venv/bin/python -m pip install -e '.[bench]' in that checkout)")
    probe = subprocess.run([sysm.python(), "-c", "import tocsin; print(tocsin.__file__)"],
                           cwd=sysm.cwd(), env=sysm.env(), capture_output=True, text=True,
                           timeout=60, check=False)
    imported = probe.stdout.strip()
    if probe.returncode or not Path(imported).resolve().is_relative_to(checkout.resolve()):
        raise SystemExit(f"{side}: its server would import tocsin from {imported!r} "
                         f"(not {checkout}): {probe.stderr[-500:]}")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True,
                              text=True, timeout=30, check=False).stdout.strip()

    return {"checkout": str(checkout), "commit": git("rev-parse", "HEAD"),
            "subject": git("log", "-1", "--format=%s"),
            # what the server runs: its package and dependencies (not bench/, docs/)
            "dirty": bool(git("status", "--porcelain", "--", "tocsin", "pyproject.toml")),
            "tocsin_module": imported}


def lean(raw: Any) -> Any:
    """``raw`` without the latency samples (kept by ``bench`` for its CDF plots): they
    would make the JSON megabytes, and the A/B compares the percentiles."""
    if isinstance(raw, dict):
        return {k: lean(v) for k, v in raw.items() if k != "lat_sample"}
    if isinstance(raw, list):
        return [lean(v) for v in raw]
    return raw


def our_cpu_seconds(load: Load) -> Callable[[], float]:
    """The harness's own CPU so far: this process and the load's (not the server's)."""
    def total() -> float:
        me = os.times()
        return me.user + me.system + load.cpu_seconds()

    return total


def run_once(side: str, checkout: Path, row: Row, load: Load, sz: scenarios.Sizes,
             server_cpus: list[int] | None, load_cores: int) -> dict[str, Any]:
    """One fresh server of ``checkout``, one row, stopped; the row's raw result, its
    headline figures, how long it took (server start and stop included) and how much
    CPU other jobs took meanwhile."""
    t0 = time.monotonic()
    sysm = CheckoutTocsin(side, checkout)
    sysm.cpus = server_cpus
    out: dict[str, Any] = {"loadavg_at_start": os.getloadavg()}
    meter = OthersMeter(our_cpu_seconds(load))
    try:
        sysm.start()
    except RuntimeError as e:
        return {**out, "error": f"start failed: {str(e)[-800:]}",
                "seconds": round(time.monotonic() - t0, 1)}
    try:
        raw = row.run(sysm, load, sz, load_cores)
    except Exception as e:  # one failed run is a result; the A/B goes on
        raw = {"error": repr(e), "trace": traceback.format_exc()[-1500:],
               "server_log": sysm.log()[-800:]}
        with contextlib.suppress(Exception):
            load.close_all()
    finally:
        out["others_cpu_pct"] = meter.pct(extra_ours=sysm.cpu_seconds())
        sysm.stop()
    out["raw"] = lean(raw)
    if "error" in raw:
        out["error"] = raw["error"]
    else:
        out["figures"] = {**row.figures(raw), OTHERS.key: out["others_cpu_pct"]}
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", type=Path, help="the old checkout (with .venv)")
    ap.add_argument("--b", type=Path, help="the new checkout (with .venv)")
    ap.add_argument("--rows", default=DEFAULT_ROWS, help=f"comma list of {', '.join(ROWS)}")
    ap.add_argument("--size", choices=sorted(SIZES), default="quick")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--alternate", action="store_true",
                    help="B first in every other round (A B, B A, ...) instead of always A B")
    ap.add_argument("--quiet", type=float, default=0.0, metavar="PCT",
                    help="before each run, wait until other jobs use less than PCT %% of one "
                         "core (sampled over 2 s; 200 = both cores busy); 0 = do not wait")
    ap.add_argument("--quiet-wait", type=float, default=60.0, metavar="S",
                    help="run anyway after waiting S seconds for --quiet")
    ap.add_argument("--load-workers", type=int, default=2, help="client processes")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server/load to cores")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--table", type=Path, metavar="JSON",
                    help="only print (and rewrite beside it) the table of an earlier A/B")
    a = ap.parse_args(argv)
    if a.table:
        data = json.loads(a.table.read_text())
        md = table(data["meta"], data["runs"])
        a.table.with_suffix(".md").write_text(md)
        print(md)
        return 0
    if a.a is None or a.b is None:
        ap.error("--a and --b are required")

    rows = [r for r in a.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; choose from {', '.join(ROWS)}")
    sides = {"A": a.a.resolve(), "B": a.b.resolve()}
    sz = SIZES[a.size]
    server_cpus, load_cpus = (None, None) if a.no_pin else split_cpus()
    load_cores = len(load_cpus) if load_cpus else (os.cpu_count() or 1)
    meta: dict[str, Any] = {
        **facts(), "size": a.size, "rounds": a.rounds, "rows": rows,
        "order": "alternate" if a.alternate else "ab", "quiet_pct": a.quiet,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "harness": str(ROOT), "server_cpus": server_cpus, "load_cpus": load_cpus,
        "sides": {s: describe(s, p) for s, p in sides.items()},
        "sizes": {r: dataclasses.asdict(ROWS[r].sizes(sz)) for r in rows},
    }
    a.out.mkdir(parents=True, exist_ok=True)
    stem = a.out / f"ab-{a.size}-{time.strftime('%Y%m%d-%H%M%S')}"
    runs: list[dict[str, Any]] = []

    def save() -> str:
        md = table(meta, runs)
        stem.with_suffix(".json").write_text(
            json.dumps({"meta": meta, "runs": runs}, indent=1, default=str))
        stem.with_suffix(".md").write_text(md)
        return md

    log(f"bench.ab: {a.size}, {a.rounds} round(s), rows={rows}, A={sides['A']}, "
        f"B={sides['B']}")
    t_start = time.monotonic()
    load = Load(a.load_workers, load_cpus)
    try:
        for rnd in range(a.rounds):
            t_round = time.monotonic()
            order = ["B", "A"] if a.alternate and rnd % 2 else ["A", "B"]
            for name in rows:
                row = ROWS[name]
                for side in order:
                    log(f"round {rnd + 1}: {name} / {side}")
                    quiet: dict[str, Any] = {}
                    if a.quiet:
                        pct, waited = wait_quiet(our_cpu_seconds(load), a.quiet, a.quiet_wait)
                        quiet = {"others_cpu_pct_before": pct, "waited_s": waited}
                        log(f"  others used {pct}% of a core before it (waited {waited} s)")
                    res = run_once(side, sides[side], row, load, row.sizes(sz), server_cpus,
                                   load_cores)
                    runs.append({"round": rnd + 1, "row": name, "side": side, **quiet,
                                 **res})
                    log(f"  -> {res.get('error') or res['figures']} ({res['seconds']} s, "
                        f"others used {res.get('others_cpu_pct')}% of a core)")
                    save()
            meta.setdefault("round_seconds", []).append(round(time.monotonic() - t_round, 1))
    finally:
        load.close()
        meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
        meta["loadavg_at_end"] = os.getloadavg()
        md = save()
    print(md)
    log(f"done in {meta['elapsed_s']} s; {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
