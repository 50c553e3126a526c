"""The A/B table: per row and metric, each side's median and min-max over the rounds,
the ratio new/old (B/A) of the medians, and whether the two sides' ranges overlap."""

from __future__ import annotations

import math
import statistics
from typing import Any

from bench.ab_rows import ROWS, Metric


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v == int(v) and abs(v) < 1e6:  # counts, rates from a ladder
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def values(runs: list[dict[str, Any]], row: str, side: str, key: str) -> list[float]:
    return [float(v) for r in runs
            if r["row"] == row and r["side"] == side and "figures" in r
            and (v := r["figures"].get(key)) is not None]


def side_cell(vs: list[float], m: Metric) -> str:
    if not vs:
        return "-"
    if m.better == "zero":  # a count that must be 0: the total over the rounds
        return fmt(sum(vs))
    med = statistics.median(vs)
    return fmt(med) if len(vs) == 1 else f"{fmt(med)} ({fmt(min(vs))}-{fmt(max(vs))})"


def verdict(a: list[float], b: list[float], m: Metric) -> tuple[str, str]:
    """(ratio B/A of the medians, what the ranges say). Apart = B's range lies wholly on
    one side of A's; with identical trees that happens by noise alone now and then."""
    if not a or not b:
        return "-", "missing runs"
    if m.better == "zero":
        return "-", "ok" if sum(a) == sum(b) == 0 else "DEFECT"
    ma, mb = statistics.median(a), statistics.median(b)
    ratio = f"{mb / ma:.3f}x" if ma else "-"
    if m.better == "info":
        return ratio, ""
    if len(a) < 2 or len(b) < 2:
        return ratio, "one run: no range"
    if min(b) > max(a) or max(b) < min(a):
        b_higher = min(b) > max(a)
        which = "B better" if b_higher == (m.better == "higher") else "B WORSE"
        return ratio, f"apart, {which} (by chance alone: {chance_apart(len(a), len(b))})"
    return ratio, "overlap"


def chance_apart(na: int, nb: int) -> str:
    """How often two sets of runs of the same code come out wholly apart, either way: of
    the C(na+nb, na) equally likely orderings, two put one set all above the other.
    2 + 2 runs: 33 %; 3 + 3: 10 %; 5 + 5: 0.8 %."""
    return f"{200 / math.comb(na + nb, na):.2g} %"


def table(meta: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    sides = meta["sides"]
    lines = [f"# A/B: {meta['size']} size, {meta['rounds']} round(s), order {meta['order']}, "
             f"started {meta['started']}", ""]
    for s in ("A", "B"):
        d = sides[s]
        dirty = " + uncommitted changes in tocsin/" if d["dirty"] else ""
        lines.append(f"- {s} ({'old' if s == 'A' else 'new'}): {d['checkout']} at "
                     f"{d['commit'][:10]}{dirty} ({d['subject'][:70]})")
    lines.append(f"- load average at start {tuple(round(x, 1) for x in meta['loadavg_at_start'])}"
                 f", at end {tuple(round(x, 1) for x in meta.get('loadavg_at_end', ()))}; "
                 f"{meta['cores']} cores; round times {meta.get('round_seconds', [])} s")
    lines += ["", "| Row | Metric | A old: median (min-max) | B new: median (min-max) | "
              "B/A | ranges |", "|---|---|---|---|---|---|"]
    for name in meta["rows"]:
        row = ROWS[name]
        for m in row.metrics:
            a = values(runs, name, "A", m.key)
            b = values(runs, name, "B", m.key)
            ratio, what = verdict(a, b, m)
            arrow = {"higher": " (higher better)", "lower": " (lower better)"}.get(m.better, "")
            lines.append(f"| {row.name} | {m.label}{arrow} | {side_cell(a, m)} | "
                         f"{side_cell(b, m)} | {ratio} | {what} |")
    lines += ["", "Seconds per run (fresh server, row, stop), median per side:", ""]
    for name in meta["rows"]:
        secs = {s: [r["seconds"] for r in runs if r["row"] == name and r["side"] == s]
                for s in ("A", "B")}
        lines.append(f"- {name}: A {fmt(statistics.median(secs['A'])) if secs['A'] else '-'}"
                     f", B {fmt(statistics.median(secs['B'])) if secs['B'] else '-'}")
    errors = [r for r in runs if "error" in r]
    if errors:
        lines += ["", "Failed runs:", ""]
        lines += [f"- round {r['round']} {r['row']} / {r['side']}: {str(r['error'])[:300]}"
                  for r in errors]
    return "\n".join(lines) + "\n"
