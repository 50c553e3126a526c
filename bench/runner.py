"""The harness side of the load generator: spawn worker processes and drive them."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing as mp
import os
import time
from array import array
from typing import Any

import psutil

from bench.loadgen import worker_entry

PER_WORKER_MAX = 19_000
_rid = itertools.count(1)


class Remote:
    def __init__(self, wid: int, cpus: list[int] | None) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_entry, args=(child, wid, cpus), daemon=True)
        self.proc.start()
        child.close()
        self.wid = wid
        self.pending: int | None = None

    def send(self, name: str, **kw: Any) -> None:
        rid = next(_rid)
        self.pending = rid
        self.conn.send((rid, name, kw))

    def recv(self, timeout: float = 600) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"worker {self.wid}: no reply in {timeout}s")
        _, ok, res = self.conn.recv()
        self.pending = None
        if not ok:
            raise RuntimeError(f"worker {self.wid}: {res}")
        return res

    def call(self, name: str, timeout: float = 600, **kw: Any) -> Any:
        self.send(name, **kw)
        return self.recv(timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send((0, "exit", {}))
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


class Load:
    """``n`` client workers (each on its own source address) plus one publisher."""

    def __init__(self, n: int, cpus: list[int] | None) -> None:
        self.cpus = cpus
        self.clients = [Remote(i, cpus) for i in range(n)]
        self.pub = Remote(1000, cpus)

    def sources(self) -> list[str]:
        return [f"127.0.0.{2 + w.wid}" for w in self.clients]

    def all(self, name: str, timeout: float = 600, per: list[dict[str, Any]] | None = None,
            **kw: Any) -> list[Any]:
        for i, w in enumerate(self.clients):
            w.send(name, **(per[i] if per else kw))
        return [w.recv(timeout) for w in self.clients]

    def processes(self) -> list[psutil.Process]:
        out = []
        for w in [*self.clients, self.pub]:
            with contextlib.suppress(psutil.Error):
                if w.proc.pid is not None:
                    out.append(psutil.Process(w.proc.pid))
        return out

    def cpu_seconds(self) -> float:
        tot = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                c = p.cpu_times()
                tot += c.user + c.system
        return tot

    def connect(self, port: int, specs: list[tuple[str, str, str]], track_seen: bool = False,
                concurrency: int = 200, ids: str = "seq") -> dict[str, Any]:
        """Spread ``specs`` (key, path, kind) over the workers round-robin-by-block;
        ``ids`` is the system's id scheme (``System.ids``)."""
        nw = len(self.clients)
        per: list[list[tuple[str, str, str]]] = [[] for _ in range(nw)]
        for i, sp in enumerate(specs):
            per[i % nw].append(sp)
        srcs = self.sources()
        res = self.all("connect", per=[
            {"host": "127.0.0.1", "port": port, "src": srcs[i], "specs": per[i],
             "concurrency": concurrency, "track_seen": track_seen, "ids": ids}
            for i in range(nw)])
        return {"ok": sum(r["ok"] for r in res), "fail": sum(r["fail"] for r in res),
                "elapsed": max(r["elapsed"] for r in res),
                "errors": [e for r in res for e in r["errors"]][:5]}

    def close_all(self) -> None:
        self.all("close_all")

    def record(self, on: bool, track_t: bool = False, detail: bool = False) -> None:
        self.all("record", on=on, track_t=track_t, detail=detail)

    def stats(self, detail: bool = False) -> dict[str, Any]:
        res = self.all("stats", detail=detail)
        lat = array("d")
        per_t: dict[float, list[float]] = {}
        out: dict[str, Any] = {k: sum(r[k] for r in res) for k in
                               ("events", "gaps", "missing", "dupes", "disorder", "resets",
                                "closed_by_server", "open")}
        last_ids: dict[str, int] = {}
        det: dict[str, list[tuple[int, bytes, float]]] = {}
        for r in res:
            a = array("d")
            a.frombytes(r["lat"])
            lat.extend(a)
            for k, v in r["per_t"].items():
                tk = round(float(k), 6)
                cur = per_t.get(tk)
                if cur is None:
                    per_t[tk] = list(v)
                else:
                    cur[0] = max(cur[0], v[0])
                    cur[1] += v[1]
            last_ids.update(r["last_ids"])
            if detail:
                det.update(r.get("detail", {}))
        out["lat"] = lat
        out["per_t"] = per_t
        out["last_ids"] = last_ids
        out["detail"] = det
        out["errors"] = [e for r in res for e in r["errors"]][:5]
        return out

    def wait_events(self, expected: int, timeout: float, settle: float = 0.0) -> dict[str, Any]:
        """Poll until the clients have seen ``expected`` events in total (or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = sum(r["events"] for r in self.all("stats", light=True))
            if got >= expected:
                break
            time.sleep(0.05)
        st = self.stats()
        if settle:
            time.sleep(settle)
            st = self.stats()
        return st

    def close(self) -> None:
        for w in [*self.clients, self.pub]:
            w.close()


def split_cpus() -> tuple[list[int] | None, list[int] | None]:
    """Server on the first core, load on the rest (when there are at least two)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return [cpus[0]], cpus[1:]
