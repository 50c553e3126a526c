"""Soak: mixed load against a real ``tocsin serve`` for a long time, watching that the
server's RSS and open file descriptors stay flat.

    .venv/bin/python -m bench.soak --minutes 30          # the real soak
    .venv/bin/python -m bench.soak --minutes 1 --out /tmp/soak   # a smoke run

The load, all at once for the whole run:

- **churning streams**: ``--streams`` clients each hold an inbox (or topic) stream for
  a random 1-10 s, disconnect, and resume with their last id (connects, disconnects,
  exact replay);
- **slow readers**: ``--slow`` raw sockets with a tiny receive buffer that read a few
  bytes every few seconds, so their queues overflow and they catch up from the store;
- **publishing**: ``--rate`` notifications a second to random users (1 KB each), plus
  a topic event every tenth.

Every ``--sample`` seconds: the server's RSS (``/proc/<pid>/status``), its open fds
(``/proc/<pid>/fd``), open streams (``/api/stats``) and the load's counters. The first
``WARMUP_FRACTION`` of the run is warm-up (allocators and caches grow to their working
size); "flat" compares the median of the second quarter with the median of the last.
Results: ``<out>/soak.json`` (every sample) and ``<out>/soak.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

RESULTS = Path(__file__).parent / "results"
WARMUP_FRACTION = 0.25
RSS_TOLERANCE = 0.10  # flat: the last quarter's median RSS within 10 % of the second's
FD_TOLERANCE = 20  # flat: open fds within 20 of each other (streams still churn)


@dataclass
class Counters:
    connects: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    events: int = 0
    resets: int = 0
    published: int = 0
    publish_errors: dict[str, int] = field(default_factory=dict)
    slow_bytes: int = 0

    def count(self, table: dict[str, int], key: object) -> None:
        table[str(key)] = table.get(str(key), 0) + 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_sample(pid: int) -> tuple[int, int]:
    """(RSS in KB, open fds) of a process, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    def __init__(self, url: str, key: str, secret: str, users: int) -> None:
        self.url, self.key, self.secret = url, key, secret
        self.users = [f"soak-{i}" for i in range(users)]
        self.c = Counters()
        self.stop = asyncio.Event()

    def token(self, user: str) -> str:
        return jwt.encode({"sub": user, "topics": ["soak:*"], "exp": int(time.time()) + 86400},
                          self.secret, algorithm="HS256")

    async def churn(self, i: int) -> None:
        user = self.users[i % len(self.users)]
        path = "/api/notifications/stream" if i % 4 else "/api/topics/soak:room/stream"
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        last: str | None = None
        async with httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(10, read=30)) as c:
            while not self.stop.is_set():
                h = dict(headers, **({"Last-Event-ID": last} if last else {}))
                hold = random.uniform(1, 10)
                try:
                    async with c.stream("GET", path, headers=h) as r:
                        self.c.connects += 1
                        if r.status_code != 200:
                            self.c.count(self.c.refused, r.status_code)
                            await asyncio.sleep(1)
                            continue
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(hold):
                                async for line in r.aiter_lines():
                                    if line.startswith("id:"):
                                        last = line[3:].strip()
                                        self.c.events += 1
                                    elif line == "event: reset":
                                        self.c.resets += 1
                except httpx.HTTPError as exc:
                    self.c.count(self.c.refused, type(exc).__name__)
                    await asyncio.sleep(1)

    async def slow_reader(self, i: int) -> None:
        user = self.users[i % len(self.users)]
        host, port = self.url.removeprefix("http://").split(":")
        while not self.stop.is_set():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            try:
                await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
                reader, writer = await asyncio.open_connection(sock=sock)
                writer.write(f"GET /api/notifications/stream?token={self.token(user)} "
                             f"HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                await writer.drain()
                self.c.connects += 1
                deadline = time.monotonic() + random.uniform(30, 90)
                while time.monotonic() < deadline and not self.stop.is_set():
                    data = await reader.read(256)
                    if not data:
                        break
                    self.c.slow_bytes += len(data)
                    await asyncio.sleep(2)
                writer.close()
            except OSError as exc:
                self.c.count(self.c.refused, type(exc).__name__)
                sock.close()
                await asyncio.sleep(1)

    async def publish(self, rate: float) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        pad = "x" * 1000
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30) as c:
            n = 0
            started = time.monotonic()
            while not self.stop.is_set():
                n += 1
                try:
                    if n % 10 == 0:
                        r = await c.post("/api/topics/soak:room/events",
                                         json={"type": "soak", "title": f"t{n}"})
                    else:
                        r = await c.post("/api/notifications", json={
                            "recipients": random.sample(self.users, 3), "type": "soak",
                            "title": f"n{n}", "data": {"pad": pad}})
                    if r.status_code == 201:
                        self.c.published += 1
                    else:
                        self.c.count(self.c.publish_errors, r.status_code)
                except httpx.HTTPError as exc:
                    self.c.count(self.c.publish_errors, type(exc).__name__)
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    key: str
    secret: str

    @classmethod
    def start(cls, work: Path) -> Server:
        port, key, secret = free_port(), "soak-" + secrets.token_hex(8), secrets.token_hex(32)
        cmd = [sys.executable, "-m", "tocsin", "serve", "--port", str(port),
               "--database", f"sqlite+aiosqlite:///{work / 'soak.db'}", "--api-key", key,
               "--jwt-secret", secret, "--heartbeat", "5s", "--log-level", "warning"]
        with (work / "server.log").open("wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        return cls(proc, f"http://127.0.0.1:{port}", key, secret)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def run(args: argparse.Namespace, srv: Server) -> dict[str, Any]:
    server, url, key, secret = srv.proc, srv.url, srv.key, srv.secret
    samples: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=5) as probe:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await probe.get("/readyz")).status_code == 200:
                    break
            await asyncio.sleep(0.1)
        soak = Soak(url, key, secret, args.users)
        tasks = [asyncio.create_task(soak.churn(i)) for i in range(args.streams)]
        tasks += [asyncio.create_task(soak.slow_reader(i)) for i in range(args.slow)]
        tasks.append(asyncio.create_task(soak.publish(args.rate)))
        started = time.monotonic()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            await asyncio.sleep(min(args.sample, max(0.0, end - time.monotonic())))
            if server.poll() is not None:
                raise RuntimeError(f"server exited with {server.returncode}")
            rss, fds = proc_sample(server.pid)
            stats = (await probe.get("/api/stats",
                                     headers={"Authorization": f"Bearer {key}"})).json()
            samples.append({"t": round(time.monotonic() - started, 1), "rss_kb": rss,
                            "fds": fds, "streams": stats["connections"],
                            **{k: v for k, v in asdict(soak.c).items()
                               if isinstance(v, int)}})
        soak.stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"args": vars(args), "samples": samples, "counters": asdict(soak.c),
            "verdict": verdict(samples), "load_average": os.getloadavg(),
            "git": _git_rev(), "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def verdict(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Flat or not: the second quarter's medians against the last quarter's."""
    n = len(samples)
    if n < 4:
        return {"flat": None, "why": "too few samples"}
    q = max(1, n // 4)
    early, late = samples[q : 2 * q], samples[-q:]
    rss0 = statistics.median(s["rss_kb"] for s in early)
    rss1 = statistics.median(s["rss_kb"] for s in late)
    fd0 = statistics.median(s["fds"] for s in early)
    fd1 = statistics.median(s["fds"] for s in late)
    growth = (rss1 - rss0) / rss0
    flat = growth <= RSS_TOLERANCE and fd1 - fd0 <= FD_TOLERANCE
    return {"flat": flat, "rss_kb_early": rss0, "rss_kb_late": rss1,
            "rss_growth": round(growth, 4), "fds_early": fd0, "fds_late": fd1,
            "rss_kb_max": max(s["rss_kb"] for s in samples),
            "fds_max": max(s["fds"] for s in samples)}


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(result: dict[str, Any]) -> str:
    v, c, a = result["verdict"], result["counters"], result["args"]
    lines = [
        "# Soak",
        "",
        f"{result['when']}, git {result['git']}, {a['minutes']} minutes, load average at "
        f"the end {tuple(round(x, 1) for x in result['load_average'])} (shared 2-core "
        "machine). Raw samples: `soak.json`. Reproduce: "
        f"`python -m bench.soak --minutes {a['minutes']}`.",
        "",
        f"Load: {a['streams']} churning streams (hold 1-10 s, resume with the last id), "
        f"{a['slow']} slow readers (4 KB receive buffer, 256 bytes every 2 s), "
        f"{a['rate']} publishes/s (3 recipients, 1 KB; every tenth a topic event), "
        f"{a['users']} users; sampled every {a['sample']} s.",
        "",
        "| | value |",
        "|---|---|",
        f"| verdict (RSS within {RSS_TOLERANCE:.0%}, fds within {FD_TOLERANCE}) | "
        f"{'flat' if v.get('flat') else 'NOT flat' if v.get('flat') is False else v}"
        " |",
    ]
    if v.get("flat") is not None:
        lines += [
            f"| RSS, 2nd quarter median → last quarter median | {v['rss_kb_early'] / 1024:.1f} "
            f"→ {v['rss_kb_late'] / 1024:.1f} MB ({v['rss_growth']:+.1%}) |",
            f"| RSS max | {v['rss_kb_max'] / 1024:.1f} MB |",
            f"| open fds, 2nd quarter median → last quarter median (max) | {v['fds_early']:.0f}"
            f" → {v['fds_late']:.0f} ({v['fds_max']}) |",
        ]
    lines += [
        f"| stream connects | {c['connects']:,} |",
        f"| events received by churning streams | {c['events']:,} |",
        f"| resets | {c['resets']:,} |",
        f"| publishes acknowledged | {c['published']:,} |",
        f"| publish errors | {c['publish_errors'] or 0} |",
        f"| refused or failed connects | {c['refused'] or 0} |",
        f"| bytes read by slow readers | {c['slow_bytes']:,} |",
        "",
        "| t (s) | RSS (MB) | fds | open streams |",
        "|---|---|---|---|",
    ]
    samples = result["samples"]
    step = max(1, len(samples) // 12)
    for s in samples[::step] + ([samples[-1]] if samples and len(samples) % step else []):
        lines.append(f"| {s['t']:.0f} | {s['rss_kb'] / 1024:.1f} | {s['fds']} | "
                     f"{s['streams']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--slow", type=int, default=10)
    p.add_argument("--rate", type=float, default=50.0, help="publishes per second")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    srv = Server.start(Path(tempfile.mkdtemp(prefix="tocsin-soak-")))
    try:
        result = asyncio.run(run(args, srv))
    finally:
        srv.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out
    result["args"]["out"] = str(out)
    (out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "soak.md").write_text(report(result))
    print(report(result))
    return 0 if result["verdict"].get("flat") is not False else 1


if __name__ == "__main__":
    raise SystemExit(main())
