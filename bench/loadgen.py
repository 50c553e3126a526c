"""Lean uvloop load generator: SSE, Tocsin WebSocket (``/api/ws``) and Socket.IO
(Engine.IO v4 over WebSocket) clients.

One worker process holds up to ~19k client sockets bound to its own loopback source
address (127.0.0.N) and is driven by the harness over a ``multiprocessing`` pipe.  The
clients parse frames minimally: the ``id:`` line (checked for gaps, duplicates and
order) and the ``"bench_t":`` float that the publisher embedded in the payload (the
publish moment on the shared ``CLOCK_MONOTONIC``), so every delivery yields a latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import socket
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

IP_BIND_ADDRESS_NO_PORT = 24
T_KEY = b'"bench_t":'
monotonic = time.monotonic


def raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(slots=True)
class Spec:
    """One client: what to request and how to resume."""

    key: str
    path: str
    kind: str = "sse"  # "sse" | "ws" | "sio"
    ids: str = "seq"  # "seq": <epoch>-<seq> / integers | "nchan": <time>:<index> (SSE only)
    # a slow consumer (the slow-consumers row): its own counters (``BaseClient.slow``),
    # never in the worker's totals; ``rcvbuf``/``mss`` (SO_RCVBUF, TCP_MAXSEG) set before
    # connecting when not 0
    slow: bool = False
    rcvbuf: int = 0
    mss: int = 0


@dataclass
class Totals:
    events: int = 0
    gaps: int = 0
    missing: int = 0
    dupes: int = 0
    disorder: int = 0
    resets: int = 0
    closed_by_server: int = 0
    unique: int = 0  # events taken in order (not duplicates), across reconnects
    reconnects: int = 0
    lat: array = field(default_factory=lambda: array("d"))
    per_t: dict[bytes, list[float]] = field(default_factory=dict)


def _parse_t(buf: bytes, start: int, end: int) -> bytes | None:
    k = buf.find(T_KEY, start, end)
    if k < 0:
        return None
    k += len(T_KEY)
    j = k
    n = end
    while j < n and buf[j] not in b",}]":
        j += 1
    return buf[k:j].strip()


class BaseClient(asyncio.Protocol):
    """State shared by SSE and Socket.IO clients: id checking and recording."""

    def __init__(self, w: Worker, spec: Spec) -> None:
        self.w = w
        self.spec = spec
        self.transport: asyncio.Transport | None = None
        self.head = True
        self.hbuf = b""
        self.buf = b""
        self.last_id = 0  # the seq of the newest event id (ids are <epoch>-<seq> or plain)
        self.epoch = b""  # the epoch of the ids received so far (b"" for plain ids)
        self.seen_ids: set[Any] | None = None  # seqs, or id keys for keyed ids
        # keyed ids (Nchan's): the newest id's order key and its text, sent back on resume
        self.last_key: tuple[int, ...] = ()
        self.last_raw = b""
        self.ready: asyncio.Future[bool] = w.loop.create_future()
        self.closed = False
        self.aborting = False
        self.paused = False
        self.detail: list[tuple[int, bytes, float]] | None = None
        self.connected_at = 0.0
        self.resumed = False
        # a slow consumer's own counters (kept across reconnects); None: the worker's
        self.slow: Totals | None = Totals() if spec.slow else None

    @property
    def tot(self) -> Totals:
        return self.w.totals if self.slow is None else self.slow

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_result(False)
        if not self.aborting:
            self.tot.closed_by_server += 1

    def on_reset(self, eid: int, epoch: bytes) -> None:
        """A ``reset`` event: the client refetches its state and goes on from the
        reset's id (not an event, not a gap)."""
        self.tot.resets += 1
        self.epoch = epoch
        self.last_id = eid
        if self.seen_ids is not None:
            self.seen_ids.add(eid)

    def on_event(self, eid: int, t: bytes | None, now: float, epoch: bytes = b"") -> None:
        tot = self.tot
        tot.events += 1
        if epoch != self.epoch:
            if self.epoch:  # the stream's history changed under the client: never expected
                tot.disorder += 1
            self.epoch = epoch
        last = self.last_id
        if eid == last + 1 or (last == 0 and not self.resumed):
            pass
        elif eid <= last:
            if (self.seen_ids is not None and eid in self.seen_ids) or eid == last:
                tot.dupes += 1
            else:
                tot.disorder += 1
            return
        else:
            tot.gaps += 1
            tot.missing += eid - last - 1
        self.last_id = eid
        if self.seen_ids is not None:
            self.seen_ids.add(eid)
        self._record(eid, t, now)

    def on_keyed_event(self, key: tuple[int, ...], raw: bytes, t: bytes | None,
                       now: float) -> None:
        """An event whose id is ordered but not consecutive (Nchan's ``<time>:<index>``):
        duplicates and order are checked on the key; gaps cannot be seen in such ids, so
        the scenarios count deliveries against what was published instead."""
        tot = self.tot
        tot.events += 1
        if key <= self.last_key:
            if (self.seen_ids is not None and key in self.seen_ids) or key == self.last_key:
                tot.dupes += 1
            else:
                tot.disorder += 1
            return
        self.last_key = key
        self.last_raw = raw
        if self.seen_ids is not None:
            self.seen_ids.add(key)
        self._record(0, t, now)

    def _record(self, eid: int, t: bytes | None, now: float) -> None:
        w = self.w
        tot = self.tot
        tot.unique += 1
        if t is not None and w.recording:
            tf = float(t)
            tot.lat.append(now - tf)
            if w.track_t:
                rec = tot.per_t.get(t)
                if rec is None:
                    tot.per_t[t] = [now, 1.0]
                else:
                    if now > rec[0]:
                        rec[0] = now
                    rec[1] += 1.0
        if self.detail is not None and t is not None:
            self.detail.append((eid, t, now))


def _event_id(epoch: bytes, seq: int) -> str:
    """The id to resume from: ``<epoch>-<seq>``, or the plain seq for servers without epochs."""
    return f"{epoch.decode()}-{seq}" if epoch else str(seq)


def seq_id_key(raw: bytes) -> tuple[bytes, int]:
    """Tocsin's ``<epoch>-<seq>`` id (and the peers' plain integers) as ``(epoch, seq)``:
    within one epoch the seqs are consecutive, so gaps show as well as order."""
    epoch, _, seq = raw.strip().rpartition(b"-")
    return epoch, int(seq)


def nchan_id_key(raw: bytes) -> tuple[int, ...]:
    """Nchan's message id ``<time>:<index>`` as a tuple of ints, compared in order.
    Multiplexed subscriptions get ``<t>:<i>,<t>:<i>`` (the changed channel's part in
    brackets): every part only moves forward, so the flattened tuple still orders them."""
    parts = raw.replace(b"[", b"").replace(b"]", b"").replace(b",", b":").split(b":")
    return tuple(int(x) for x in parts if x.strip())


class SSEClient(BaseClient):
    def __init__(self, w: Worker, spec: Spec) -> None:
        super().__init__(w, spec)
        self.chunked = False
        self.chunk_left = 0  # data bytes left in current chunk
        self.skip_crlf = 0
        self.cbuf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        hdr = ""
        if self.spec.ids == "nchan":
            # resume after the newest id held; holding none, the channel's buffer is all new
            if self.resumed and self.last_raw:
                hdr = f"Last-Event-ID: {self.last_raw.decode()}\r\n"
        elif self.resumed:
            hdr = f"Last-Event-ID: {_event_id(self.epoch, self.last_id)}\r\n"
        req = (f"GET {self.spec.path} HTTP/1.1\r\nHost: {self.w.host}\r\n"
               f"Accept: text/event-stream\r\n{hdr}\r\n")
        transport.write(req.encode())

    def _dechunk(self, data: bytes) -> bytes:
        out: list[bytes] = []
        buf = self.cbuf + data if self.cbuf else data
        self.cbuf = b""
        pos = 0
        n = len(buf)
        while pos < n:
            if self.skip_crlf:
                take = min(self.skip_crlf, n - pos)
                self.skip_crlf -= take
                pos += take
                continue
            if self.chunk_left:
                take = min(self.chunk_left, n - pos)
                out.append(buf[pos:pos + take])
                self.chunk_left -= take
                pos += take
                if not self.chunk_left:
                    self.skip_crlf = 2
                continue
            i = buf.find(b"\r\n", pos)
            if i < 0:
                self.cbuf = buf[pos:]
                break
            size = int(buf[pos:i].split(b";", 1)[0], 16)
            pos = i + 2
            if size == 0:
                self.skip_crlf = 2
                continue
            self.chunk_left = size
        return b"".join(out) if len(out) != 1 else out[0]

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        if self.head:
            self.hbuf += data
            i = self.hbuf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = self.hbuf[:i].lower()
            data = self.hbuf[i + 4:]
            self.hbuf = b""
            self.head = False
            ok = head.startswith(b"http/1.1 200") or head.startswith(b"http/1.0 200")
            self.chunked = b"transfer-encoding: chunked" in head
            if not ok:
                self.w.errors.append(head[:200].decode(errors="replace"))
                if not self.ready.done():
                    self.ready.set_result(False)
                self.aborting = True
                if self.transport:
                    self.transport.abort()
                return
            self.connected_at = now
            if not self.ready.done():
                self.ready.set_result(True)
            if not data:
                return
        if self.chunked:
            data = self._dechunk(data)
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        buf = self.buf + data if self.buf else data
        start = 0
        keyed = self.spec.ids == "nchan"
        while True:
            end = buf.find(b"\n\n", start)
            if end < 0:
                break
            if buf.startswith(b"id:", start):
                i = start
            else:
                i = buf.find(b"\nid:", start, end)
                if i >= 0:
                    i += 1
            if i >= 0:
                nl = buf.find(b"\n", i, end + 1)
                if keyed:
                    raw = buf[i + 3:nl].strip()
                    self.on_keyed_event(nchan_id_key(raw), raw, _parse_t(buf, nl, end), now)
                    start = end + 2
                    continue
                epoch, seq = seq_id_key(buf[i + 3:nl])
                if buf.find(b"event: reset", start, end) >= 0:
                    self.on_reset(seq, epoch)
                else:
                    self.on_event(seq, _parse_t(buf, nl, end), now, epoch)
            start = end + 2
        self.buf = buf[start:]


class SIOClient(BaseClient):
    """Engine.IO v4 over WebSocket, minimal: open, namespace connect, ping/pong, events."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sep = "&" if "?" in self.spec.path else "?"
        req = (f"GET {self.spec.path}{sep}EIO=4&transport=websocket HTTP/1.1\r\n"
               f"Host: {self.w.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        transport.write(req.encode())

    def send_text(self, payload: bytes) -> None:
        n = len(payload)
        assert n < 126
        # zero mask key: payload is sent as is
        if self.transport is not None:
            self.transport.write(bytes((0x81, 0x80 | n, 0, 0, 0, 0)) + payload)

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        if self.head:
            self.hbuf += data
            i = self.hbuf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = self.hbuf[:i]
            data = self.hbuf[i + 4:]
            self.hbuf = b""
            self.head = False
            if not head.startswith(b"HTTP/1.1 101"):
                self.w.errors.append(head[:200].decode(errors="replace"))
                self.aborting = True
                if not self.ready.done():
                    self.ready.set_result(False)
                if self.transport:
                    self.transport.abort()
                return
        buf = self.buf + data if self.buf else data
        frames, pos = ws_frames(buf)
        for op, p0, p1 in frames:
            ln = p1 - p0
            if op == 8:  # close
                continue
            if op == 9 and self.transport is not None:
                # the WebSocket protocol ping (uvicorn's keepalive, every 20 s): pong it,
                # as browsers and socketio.AsyncClient do, else uvicorn closes the socket
                # 20 s later (1011 keepalive ping timeout)
                self.transport.write(ws_frame(buf[p0:p1], 10))
                continue
            if op != 1 or ln == 0:
                continue
            c = buf[p0]
            if c == 0x34:  # '4' socket.io message
                if buf[p0 + 1] == 0x32:  # '42' event
                    k = buf.find(b'"id":', p0, p1)
                    if k >= 0:
                        k += 5
                        j = k
                        while buf[j] not in b",}":
                            j += 1
                        epoch, _, seq = buf[k:j].strip(b'" ').rpartition(b"-")
                        self.on_event(int(seq), _parse_t(buf, j, p1), now, epoch)
                elif buf[p0 + 1] == 0x30:  # '40' namespace connected
                    self.connected_at = now
                    if not self.ready.done():
                        self.ready.set_result(True)
            elif c == 0x32:  # '2' ping
                self.send_text(b"3")
            elif c == 0x30:  # '0' open
                self.send_text(b"40")
        self.buf = buf[pos:]


def ws_frames(buf: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """The complete server frames at the start of ``buf`` as ``(opcode, start, end)`` of
    each payload, and where the incomplete rest begins (server frames are unmasked).
    Shared by the Socket.IO and the WebSocket clients."""
    frames: list[tuple[int, int, int]] = []
    pos = 0
    n = len(buf)
    while n - pos >= 2:
        b1 = buf[pos + 1] & 0x7F
        hl = 2
        if b1 == 126:
            if n - pos < 4:
                break
            ln = int.from_bytes(buf[pos + 2:pos + 4], "big")
            hl = 4
        elif b1 == 127:
            if n - pos < 10:
                break
            ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
            hl = 10
        else:
            ln = b1
        if n - pos < hl + ln:
            break
        frames.append((buf[pos] & 0x0F, pos + hl, pos + hl + ln))
        pos += hl + ln
    return frames, pos


def ws_frame(payload: bytes, op: int = 1) -> bytes:
    """A client frame (masked with a zero key, so the payload goes as is)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | op, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | op, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | op, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class WSClient(BaseClient):
    """Tocsin's ``/api/ws``, minimal: the upgrade carries ``?token=``; after the 101 one
    ``subscribe`` (with ``since`` when resuming); ready at the ``subscribed`` ack; event
    frames ``{"stream":..,"id":"<epoch>-<seq>","event":..,"data":{..}}`` are checked
    like SSE ids. ``spec.path`` is ``/api/ws?token=..#<stream>`` (the fragment names
    the subscription and is never sent)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        path = self.spec.path.partition("#")[0]
        req = (f"GET {path} HTTP/1.1\r\n"
               f"Host: {self.w.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")
        self.transport.write(req.encode())

    def _subscribe(self) -> None:
        stream = self.spec.path.partition("#")[2] or "inbox"
        since = (f',"since":"{_event_id(self.epoch, self.last_id)}"' if self.resumed else "")
        if self.transport is not None:
            self.transport.write(ws_frame(
                f'{{"op":"subscribe","stream":"{stream}"{since}}}'.encode()))

    def _refused(self, why: str) -> None:
        self.w.errors.append(why[:200])
        self.aborting = True
        if not self.ready.done():
            self.ready.set_result(False)
        if self.transport:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        now = monotonic()
        if self.head:
            self.hbuf += data
            i = self.hbuf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = self.hbuf[:i]
            data = self.hbuf[i + 4:]
            self.hbuf = b""
            self.head = False
            if not head.startswith(b"HTTP/1.1 101"):
                self._refused(head.decode(errors="replace"))
                return
            self._subscribe()
        buf = self.buf + data if self.buf else data
        frames, pos = ws_frames(buf)
        for op, p0, p1 in frames:
            ln = p1 - p0
            if op == 1:
                if buf.startswith(b'{"stream":', p0):
                    k = buf.find(b'"id":"', p0, p1)
                    if k < 0:
                        continue
                    k += 6
                    j = buf.find(b'"', k, p1)
                    epoch, _, seq = buf[k:j].rpartition(b"-")
                    if buf.startswith(b'"event":"reset"', j + 2):
                        self.on_reset(int(seq), epoch)
                    else:
                        self.on_event(int(seq), _parse_t(buf, j, p1), now, epoch)
                elif buf.startswith(b'{"op":"subscribed"', p0):
                    self.connected_at = now
                    if not self.ready.done():
                        self.ready.set_result(True)
                elif buf.startswith(b'{"op":"error"', p0):
                    self.w.errors.append(buf[p0:p1][:200].decode(errors="replace"))
                    if not self.ready.done():
                        self._refused("subscribe refused")
            elif op == 9 and self.transport is not None:  # protocol ping: pong
                self.transport.write(ws_frame(buf[p0:p1], 10))
            elif op == 8 and not self.ready.done():  # closed before the ack
                code = int.from_bytes(buf[p0:p0 + 2], "big") if ln >= 2 else 0
                self._refused(f"closed {code}: {buf[p0 + 2:p1].decode(errors='replace')}")
        self.buf = buf[pos:]


class Worker:
    def __init__(self, conn: Connection, wid: int) -> None:
        self.conn = conn
        self.wid = wid
        self.loop = asyncio.get_running_loop()
        self.clients: dict[str, BaseClient] = {}
        self.specs: dict[str, Spec] = {}
        self.totals = Totals()
        self.recording = False
        self.track_t = False
        self.errors: list[str] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.src = "127.0.0.1"
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    # --- connection management -------------------------------------------------
    async def open_one(self, spec: Spec, last_id: int = 0, timeout: float = 30.0) -> bool:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            if spec.rcvbuf:  # before connecting: fixes the window (no autotuning)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, spec.rcvbuf)
            if spec.mss:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, spec.mss)
            sock.bind((self.src, 0))
            sock.setblocking(False)
            await asyncio.wait_for(self.loop.sock_connect(sock, (self.host, self.port)), timeout)
        except (OSError, TimeoutError) as e:
            sock.close()
            self.errors.append(f"connect: {e!r}")
            return False
        proto: BaseClient = (SIOClient(self, spec) if spec.kind == "sio" else
                             WSClient(self, spec) if spec.kind == "ws" else SSEClient(self, spec))
        old = self.clients.get(spec.key)
        if old is not None:
            proto.resumed = True
            proto.last_id = last_id or old.last_id
            proto.epoch = old.epoch
            proto.seen_ids = old.seen_ids
            proto.detail = old.detail
            proto.last_key, proto.last_raw = old.last_key, old.last_raw
            if old.slow is not None:
                proto.slow = old.slow
        else:
            proto.last_id = last_id
        try:
            await self.loop.create_connection(lambda: proto, sock=sock)
        except OSError as e:
            sock.close()
            self.errors.append(f"create_connection: {e!r}")
            return False
        self.clients[spec.key] = proto
        try:
            return await asyncio.wait_for(asyncio.shield(proto.ready), timeout)
        except TimeoutError:
            self.errors.append("timeout waiting for response head")
            return False

    async def cmd_connect(self, host: str, port: int, src: str, specs: list[tuple[str, str, str]],
                          concurrency: int = 256, timeout: float = 30.0,
                          track_seen: bool = False, ids: str = "seq", slow: bool = False,
                          rcvbuf: int = 0, mss: int = 0) -> dict[str, Any]:
        self.host, self.port, self.src = host, port, src
        sem = asyncio.Semaphore(concurrency)
        ok = 0
        fail = 0
        t0 = monotonic()

        async def one(sp: Spec) -> None:
            nonlocal ok, fail
            async with sem:
                if await self.open_one(sp, timeout=timeout):
                    ok += 1
                    if track_seen:
                        self.clients[sp.key].seen_ids = set()
                else:
                    fail += 1

        sps = [Spec(k, p, kind, ids, slow, rcvbuf, mss) for k, p, kind in specs]
        for sp in sps:
            self.specs[sp.key] = sp
        await asyncio.gather(*(one(sp) for sp in sps))
        return {"ok": ok, "fail": fail, "elapsed": monotonic() - t0,
                "errors": self.errors[-5:], "open": self.open_count()}

    def open_count(self) -> int:
        return sum(1 for c in self.clients.values() if not c.closed)

    async def cmd_close_all(self) -> dict[str, Any]:
        for c in self.clients.values():
            c.aborting = True
            if c.transport is not None:
                c.transport.abort()
        await asyncio.sleep(0.2)
        n = len(self.clients)
        self.clients.clear()
        self.specs.clear()
        self.totals = Totals()
        self.errors.clear()
        return {"closed": n}

    async def cmd_drop_reconnect(self, jitter: float, detail: bool,
                                 wait_s: float = 60.0) -> dict[str, Any]:
        """Abort every connection at once, then reconnect each after U(0, jitter) s."""
        t0 = monotonic()
        olds = list(self.clients.values())
        for c in olds:
            c.aborting = True
            if c.transport is not None:
                c.transport.abort()
        times: list[float] = []
        at: dict[str, float] = {}
        fails = 0
        sem = asyncio.Semaphore(512)

        async def again(c: BaseClient) -> None:
            nonlocal fails
            await asyncio.sleep(random.uniform(0, jitter))
            for _attempt in range(20):
                async with sem:
                    okk = await self.open_one(c.spec, last_id=c.last_id, timeout=10)
                if okk:
                    now = monotonic()
                    times.append(now - t0)
                    at[c.spec.key] = now
                    return
                await asyncio.sleep(0.2 + random.random() * 0.5)
            fails += 1

        tasks = [asyncio.create_task(again(c)) for c in olds]
        _, pending = await asyncio.wait(tasks, timeout=wait_s)
        for t in pending:
            t.cancel()
        fails += len(pending)  # still not back when the harness stopped waiting
        return {"reconnected": len(times), "fail": fails,
                "all_reconnected_s": max(times) if times else None, "at": at,
                "errors": self.errors[-5:]}

    async def cmd_pause(self, keys: list[str], after: int = 0,
                        timeout: float = 10.0) -> dict[str, Any]:
        """Stop reading on ``keys``; with ``after``, each once it holds that many events
        (a slow client's own count), so it has a position to resume from."""
        deadline = monotonic() + timeout
        while after and monotonic() < deadline:
            if all((c := self.clients.get(k)) is None or c.tot.unique >= after
                   for k in keys):
                break
            await asyncio.sleep(0.02)
        n = 0
        for k in keys:
            c = self.clients.get(k)
            if c is not None and c.transport is not None:
                c.transport.pause_reading()
                c.paused = True
                n += 1
        return {"paused": n}

    def cmd_final_ids(self) -> dict[str, Any]:
        """The newest event id held by this worker's other (not slow) clients: the
        stream's end once they all caught up (``last_key`` for keyed ids)."""
        others = [c for c in self.clients.values() if c.slow is None]
        return {"last_id": max((c.last_id for c in others), default=0),
                "last_key": list(max((c.last_key for c in others), default=()))}

    async def cmd_resume(self, keys: list[str], last_id: int, last_key: list[int],
                         expected: int = 0, timeout: float = 15.0, quiet: float = 2.0,
                         attempts: int = 5) -> dict[str, Any]:
        """Let paused slow clients read again; one the server closed reconnects with
        ``Last-Event-ID`` (its newest id). Waits until each holds the stream's end
        (``last_id`` / ``last_key``), or has received nothing for ``quiet`` s since
        it was last (re)connected, or ``timeout``. Then the verdict per client:
        consistent = no gap, duplicate or disorder, holds the end, and either holds
        every one of the ``expected`` events (``unique``: the only check Nchan's ids
        allow) or was told to refetch (``reset``)."""
        t0 = monotonic()
        end_key = tuple(last_key)
        for k in keys:
            c = self.clients.get(k)
            if c is not None and c.paused:
                c.paused = False
                if c.transport is not None and not c.closed:
                    c.transport.resume_reading()
        busy: dict[str, asyncio.Task[bool]] = {}
        seen: dict[str, tuple[int, float]] = {}  # key -> (unique events, since when)
        tries: dict[str, int] = {}

        def holds_end(c: BaseClient) -> bool:
            return (c.last_key >= end_key if c.spec.ids == "nchan"
                    else c.last_id >= last_id)

        async def again(c: BaseClient) -> bool:
            assert c.slow is not None
            c.slow.reconnects += 1
            return await self.open_one(c.spec, last_id=c.last_id, timeout=10)

        while monotonic() - t0 < timeout:
            now = monotonic()
            waiting = False
            for k in keys:
                c = self.clients.get(k)
                if c is None or c.slow is None:
                    continue
                if k in busy:
                    if not busy[k].done():
                        waiting = True
                        continue
                    del busy[k]
                    seen.pop(k, None)
                    c = self.clients[k]
                if c.closed:
                    if tries.get(k, 0) < attempts:
                        tries[k] = tries.get(k, 0) + 1
                        busy[k] = asyncio.create_task(again(c))
                        waiting = True
                    continue
                if holds_end(c):
                    continue
                n, since = seen.get(k, (-1, now))
                assert c.slow is not None
                if c.slow.unique != n:
                    seen[k] = (c.slow.unique, now)
                    waiting = True
                elif now - since < quiet:
                    waiting = True
            if not waiting:
                break
            await asyncio.sleep(0.05)
        for tk in busy.values():
            tk.cancel()
        out: dict[str, Any] = {"n": 0, "consistent": 0, "all_in_order": 0, "refetch": 0,
                               "reset": 0, "closed": 0, "reconnected": 0, "holds_end": 0,
                               "gaps": 0, "missing": 0, "dupes": 0, "disorder": 0,
                               "unique": [], "elapsed": monotonic() - t0, "examples": []}
        for k in keys:
            c = self.clients.get(k)
            if c is None or c.slow is None:
                continue
            s = c.slow
            end = holds_end(c) and not c.closed
            clean = not (s.gaps or s.dupes or s.disorder)
            out["n"] += 1
            out["holds_end"] += end
            out["reset"] += s.resets > 0
            out["closed"] += s.closed_by_server > 0
            out["reconnected"] += s.reconnects > 0 and not c.closed
            for f in ("gaps", "missing", "dupes", "disorder"):
                out[f] += getattr(s, f)
            out["unique"].append(s.unique)
            ok = clean and end and (s.resets > 0 or s.unique >= expected)
            if ok and s.resets:
                out["refetch"] += 1
            elif ok:
                out["all_in_order"] += 1
            out["consistent"] += ok
            if not ok and len(out["examples"]) < 3:
                out["examples"].append(
                    f"{k}: last {c.last_id or c.last_raw.decode()} (end "
                    f"{last_id or end_key}), {s.unique} events, gaps {s.gaps} "
                    f"(missing {s.missing}), dupes {s.dupes}, disorder {s.disorder}, "
                    f"resets {s.resets}, closed {s.closed_by_server}, "
                    f"reconnects {s.reconnects}, open {not c.closed}")
        return out

    def cmd_record(self, on: bool, track_t: bool = False, detail: bool = False,
                   reset: bool = True) -> dict[str, Any]:
        if reset:
            self.totals = Totals(closed_by_server=self.totals.closed_by_server)
        self.recording = on
        self.track_t = track_t
        for c in self.clients.values():
            c.detail = [] if detail else None
        return {"ok": True}

    def cmd_stats(self, detail: bool = False, light: bool = False) -> dict[str, Any]:
        t = self.totals
        if light:
            return {"events": t.events, "open": self.open_count()}
        out: dict[str, Any] = {
            "events": t.events, "gaps": t.gaps, "missing": t.missing, "dupes": t.dupes,
            "disorder": t.disorder, "resets": t.resets,
            "closed_by_server": t.closed_by_server, "open": self.open_count(),
            "lat": t.lat.tobytes(),
            "per_t": {k.decode(): v for k, v in t.per_t.items()},
            "errors": self.errors[-5:],
            "last_ids": {k: c.last_id for k, c in self.clients.items()},
        }
        if detail:
            out["detail"] = {k: c.detail for k, c in self.clients.items() if c.detail}
        return out

    # --- control loop ------------------------------------------------------------------
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
                fn = getattr(self, "cmd_" + name)
                res = fn(**kw)
                if asyncio.iscoroutine(res):
                    res = await res
            self.conn.send((rid, True, res))
        except Exception as e:  # report to the harness rather than die
            self.conn.send((rid, False, repr(e)))

    async def main(self) -> None:
        self.loop.add_reader(self.conn.fileno(), self._on_pipe)
        os.set_blocking(self.conn.fileno(), True)  # uvloop made it non-blocking
        await self.done.wait()
        self.loop.remove_reader(self.conn.fileno())


def worker_entry(conn: Connection, wid: int, cpus: list[int] | None) -> None:
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(cpus))
    raise_nofile()
    async def run() -> None:
        w = Worker(conn, wid)
        if wid >= 1000:
            from bench.publisher import Publisher

            await Publisher(conn).main()
        else:
            await w.main()

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(run())


def loop_factory() -> Any:
    try:
        import uvloop

        return uvloop.new_event_loop
    except ImportError:
        return None
