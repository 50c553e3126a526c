"""Publisher process: a minimal keep-alive HTTP/1.1 client pool that drives publishes.

Each payload carries ``data.bench_t`` = the send moment on ``CLOCK_MONOTONIC`` (shared by
all processes on the machine), which the clients turn into publish-to-deliver latency.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from multiprocessing.connection import Connection
from typing import Any, cast
from urllib.parse import quote

import orjson

monotonic = time.monotonic
BODY_TEXT = "Your build #4521 finished: all 312 checks passed on main"
BODY_MAX = 4000
"""Most of a padded event that goes into ``body`` (Tocsin takes <= 4 KiB there); the
rest goes into ``data.pad`` (Tocsin takes <= 16 KiB of ``data`` as JSON)."""


def padded(pad: int) -> tuple[str, str | None]:
    """``body`` and ``data.pad`` for an event carrying about ``pad`` bytes of filler
    (``pad`` <= 0: the usual short body, no filler)."""
    if pad <= 0:
        return BODY_TEXT, None
    body = (BODY_TEXT + " " + "x" * BODY_MAX)[:min(pad, BODY_MAX)]
    rest = pad - len(body)
    return body, ("y" * rest if rest > 0 else None)


class HTTPConn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.waiter: asyncio.Future[list[tuple[int, bytes]]] | None = None
        self.want = 1  # responses awaited (several when requests are pipelined)
        self.got: list[tuple[int, bytes]] = []
        self.alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.buf and len(self.got) < self.want and self._response():
            pass
        if len(self.got) >= self.want and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.got)

    def _response(self) -> bool:
        """Take one complete response off the buffer into ``got``; False if incomplete."""
        i = self.buf.find(b"\r\n\r\n")
        if i < 0:
            return False
        head = self.buf[:i]
        lower = head.lower()
        k = lower.find(b"content-length:")
        if k >= 0:
            e = lower.find(b"\r\n", k)
            n = int(lower[k + 15:e if e >= 0 else None])
            if len(self.buf) < i + 4 + n:
                return False
            body = self.buf[i + 4:i + 4 + n]
            self.buf = self.buf[i + 4 + n:]
        elif b"transfer-encoding: chunked" in lower:
            end = self.buf.find(b"\r\n0\r\n\r\n", i)
            if end < 0:
                return False
            body = self.buf[i + 4:end]
            self.buf = self.buf[end + 7:]
        else:
            body = self.buf[i + 4:]
            self.buf = b""
        self.got.append((int(head[9:12]), body))
        return True

    async def request(self, raw: bytes, n: int = 1) -> list[tuple[int, bytes]]:
        """Send ``raw`` (``n`` pipelined requests) and wait for their ``n`` responses."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.want, self.got = n, []
        self.transport.write(raw)
        return await self.waiter


class Pool:
    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.free: list[HTTPConn] = []
        self.n = 0
        self.cond = asyncio.Condition()

    async def _new(self) -> HTTPConn:
        loop = asyncio.get_running_loop()
        _, p = await loop.create_connection(HTTPConn, self.host, self.port)
        return p

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, bytes]:
        return (await self.pipeline(method, [(path, body)], headers))[0]

    async def pipeline(self, method: str, reqs: list[tuple[str, bytes]],
                       headers: dict[str, str]) -> list[tuple[int, bytes]]:
        """``(path, body)`` requests written back to back on one connection (HTTP/1.1
        pipelining); their responses in order."""
        conn: HTTPConn | None = None
        while conn is None:
            while self.free:
                c = self.free.pop()
                if c.alive:
                    conn = c
                    break
            if conn is None:
                if self.n < self.size:
                    self.n += 1
                    try:
                        conn = await self._new()
                    except OSError:
                        self.n -= 1
                        raise
                else:
                    async with self.cond:
                        await self.cond.wait()
        hdr = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = b"".join(
            (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{hdr}"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
             ).encode() + body for path, body in reqs)
        try:
            res = await conn.request(raw, len(reqs))
        except ConnectionError:
            self.n -= 1
            async with self.cond:
                self.cond.notify()
            raise
        self.free.append(conn)
        async with self.cond:
            self.cond.notify()
        return res


def now_t() -> float:
    return round(monotonic(), 6)


class Publisher:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.loop = asyncio.get_running_loop()
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    async def cmd_burst(self, host: str, port: int, path: str, headers: dict[str, str],
                        n: int, concurrency: int = 4, gap: float = 0.0,
                        pad: int = 0) -> dict[str, Any]:
        """Publish ``n`` topic events (``gap`` s apart, or back to back); return send times.
        ``pad``: about that many bytes of filler in each event (``padded``)."""
        pool = Pool(host, port, concurrency)
        body_text, filler = padded(pad)
        sem = asyncio.Semaphore(concurrency)
        sent: list[float] = []
        statuses: dict[int, int] = {}

        async def one(i: int) -> None:
            async with sem:
                t = now_t()
                sent.append(t)
                data: dict[str, Any] = {"run": i, "bench_t": t}
                if filler:
                    data["pad"] = filler  # after bench_t: the clients find it early
                body = orjson.dumps({"type": "build", "title": f"Build {i} finished",
                                     "body": body_text, "data": data})
                try:
                    st, _ = await pool.request("POST", path, headers, body)
                except OSError:
                    st = 0
                statuses[st] = statuses.get(st, 0) + 1

        t0 = monotonic()
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(one(i)))
            if gap:
                await asyncio.sleep(gap)
        await asyncio.gather(*tasks)
        return {"sent": sent, "statuses": statuses, "elapsed": monotonic() - t0}

    async def cmd_unicast(self, host: str, port: int, path: str, headers: dict[str, str],
                          users: list[str], rate: float, duration: float, batch: int = 10,
                          max_inflight: int = 64, log: bool = False,
                          seed: int = 1) -> dict[str, Any]:
        """Open-loop unicast at ``rate`` notifications/s, ``batch`` random recipients each.

        ``path`` with ``{user}`` (a system with a channel per user, no recipients list:
        Nchan): each request becomes one publish per recipient to its own path, the
        ``batch`` of them pipelined on one connection; the same JSON without
        ``recipients``. A recipient counts as acknowledged when its publish got a 2xx."""
        rng = random.Random(seed)
        per_user = "{user}" in path
        pool = Pool(host, port, max_inflight)
        req_rate = rate / batch
        n_req = max(1, int(req_rate * duration))
        statuses: dict[int, int] = {}
        acked = 0
        inflight = 0
        skipped = 0
        entries: list[tuple[float, list[str], int]] = []
        ack_lat: list[float] = []
        tasks: set[asyncio.Task[Any]] = set()

        async def one(recips: list[str]) -> None:
            nonlocal acked, inflight
            t = now_t()
            if per_user:
                body = orjson.dumps({"type": "build", "title": "Build finished",
                                     "body": BODY_TEXT, "priority": "high",
                                     "data": {"bench_t": t}})
                reqs = [(path.replace("{user}", quote(u, safe="")), body) for u in recips]
                try:
                    sts = [r[0] for r in await pool.pipeline("POST", reqs, headers)]
                except OSError:
                    sts = [0] * len(recips)
                inflight -= 1
                ack_lat.append(monotonic() - t)
                for st in sts:
                    statuses[st] = statuses.get(st, 0) + 1
                ok = [u for u, st in zip(recips, sts, strict=True) if 200 <= st < 300]
                acked += len(ok)
                if log:
                    bad = [st for st in sts if not 200 <= st < 300]
                    if ok:
                        entries.append((t, ok, 201))
                    if bad:
                        entries.append((t, [u for u in recips if u not in ok], bad[0]))
                return
            body = orjson.dumps({"recipients": recips, "type": "build",
                                 "title": "Build finished", "body": BODY_TEXT,
                                 "priority": "high", "data": {"bench_t": t}})
            try:
                st, _ = await pool.request("POST", path, headers, body)
            except OSError:
                st = 0
            inflight -= 1
            ack_lat.append(monotonic() - t)
            statuses[st] = statuses.get(st, 0) + 1
            if 200 <= st < 300:
                acked += len(recips)
            if log:
                entries.append((t, recips, st))

        t0 = monotonic()
        for i in range(n_req):
            due = t0 + i / req_rate
            d = due - monotonic()
            if d > 0:
                await asyncio.sleep(d)
            if inflight >= max_inflight:
                skipped += 1
                continue
            recips = rng.sample(users, batch) if batch > 1 else [rng.choice(users)]
            inflight += 1
            tk = asyncio.create_task(one(recips))
            tasks.add(tk)
            tk.add_done_callback(tasks.discard)
        send_end = monotonic()
        if tasks:
            await asyncio.wait(list(tasks), timeout=30)
        end = monotonic()
        ack_lat.sort()
        return {"acked": acked, "statuses": statuses, "skipped_requests": skipped,
                "send_elapsed": send_end - t0, "elapsed": end - t0,
                "achieved_rate": acked / max(end - t0, 1e-9),
                "ack_p50": ack_lat[len(ack_lat) // 2] if ack_lat else None,
                "ack_p99": ack_lat[int(len(ack_lat) * 0.99)] if ack_lat else None,
                "entries": entries}

    async def cmd_bulk(self, host: str, port: int, path: str, headers: dict[str, str],
                       users: list[str], bulk_path: str | None, concurrency: int,
                       duration: float, per_request: int = 100) -> dict[str, Any]:
        """Closed loop: ``concurrency`` senders, each publishing ``per_request`` distinct
        notifications (one recipient each, all different) after the previous ones were
        acknowledged: one ``bulk_path`` request (Tocsin), or else ``per_request`` single
        publishes pipelined on one connection (the peers have no bulk API; ``path`` as
        for :meth:`cmd_unicast`). Latency: until all ``per_request`` are acknowledged."""
        pool = Pool(host, port, concurrency)
        per_user = "{user}" in path
        statuses: dict[int, int] = {}
        lat: list[float] = []
        acked = 0
        end = monotonic() + duration

        def item(u: str, n: int) -> dict[str, Any]:
            note: dict[str, Any] = {"type": "build", "title": "Build finished",
                                    "body": BODY_TEXT, "priority": "high", "data": {"n": n}}
            if not per_user:
                note["recipients"] = [u]
            return note

        async def sender(w: int) -> None:
            nonlocal acked
            k = w
            while monotonic() < end:
                recips = [users[(k * per_request + j) % len(users)] for j in range(per_request)]
                k += concurrency
                t = monotonic()
                try:
                    if bulk_path is not None:
                        st, reply = await pool.request("POST", bulk_path, headers, orjson.dumps(
                            {"notifications": [item(u, k) for u in recips]}))
                        sts = ([int(r["status"]) for r in orjson.loads(reply)["results"]]
                               if st == 200 else [st] * per_request)
                    else:
                        reqs = [(path.replace("{user}", quote(u, safe="")) if per_user
                                 else path, orjson.dumps(item(u, k))) for u in recips]
                        sts = [r[0] for r in await pool.pipeline("POST", reqs, headers)]
                except OSError:
                    sts = [0] * per_request
                lat.append(monotonic() - t)
                for st in sts:
                    statuses[st] = statuses.get(st, 0) + 1
                acked += sum(1 for st in sts if 200 <= st < 300)

        t0 = monotonic()
        await asyncio.gather(*(sender(w) for w in range(concurrency)))
        elapsed = monotonic() - t0
        lat.sort()
        return {"acked": acked, "statuses": statuses, "elapsed": elapsed,
                "requests": len(lat), "rate": acked / max(elapsed, 1e-9),
                "p50": lat[len(lat) // 2] if lat else None,
                "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None}

    def _on_pipe(self) -> None:
        while self.conn.poll():
            try:
                msg = self.conn.recv()
            except EOFError:
                self.done.set()
                return
            task = self.loop.create_task(self._run(msg))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run(self, msg: tuple[int, str, dict[str, Any]]) -> None:
        rid, name, kw = msg
        try:
            if name == "exit":
                self.done.set()
                res: Any = {"ok": True}
            else:
                res = await getattr(self, "cmd_" + name)(**kw)
            self.conn.send((rid, True, res))
        except Exception as e:
            self.conn.send((rid, False, repr(e)))

    async def main(self) -> None:
        self.loop.add_reader(self.conn.fileno(), self._on_pipe)
        os.set_blocking(self.conn.fileno(), True)  # uvloop made it non-blocking
        await self.done.wait()
        self.loop.remove_reader(self.conn.fileno())
