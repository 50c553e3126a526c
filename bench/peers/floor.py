"""The floor: a minimal asyncio (uvloop) server holding raw sockets.

It speaks just enough HTTP/1.1 for the benchmark's routes (the same paths and payload as
Tocsin, ``?user=`` instead of a token), encodes each event once as a chunked SSE frame and
writes the same bytes to every subscriber's transport.  Resume by ``Last-Event-ID`` from
an in-memory history; a subscriber whose unsent buffer passes 1 MiB is dropped.  This is
the most a Python process on this machine can do; ratios to it show headroom.

``--procs K`` forks K processes sharing the port (SO_REUSEPORT) for the machine-wide
scale-out row. The process that receives a topic publish relays the encoded frame to its
siblings over abstract Unix datagram sockets (the floor's stand-in for a broker), so a
topic event reaches every subscriber on the machine; ids stay per process, which holds
while publishes to a topic come one at a time (the row publishes one broadcast).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
from collections import defaultdict
from typing import Any, cast
from urllib.parse import unquote

import orjson

from bench.peers.common import notification, query_param, topic_event

HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"x-accel-buffering: no\r\ntransfer-encoding: chunked\r\n\r\n")
MAX_BUFFER = 1 << 20
HISTORY = 10_000


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


PING = chunk(b": ping\n\n")
RETRY = chunk(b"retry: 3000\n\n")


def sse(eid: int, event: str, data: dict[str, Any]) -> bytes:
    return chunk(b"id: %d\nevent: %s\ndata: %s\n\n" % (eid, event.encode(), orjson.dumps(data)))


class Hub:
    def __init__(self) -> None:
        self.topics: dict[str, set[asyncio.Transport]] = defaultdict(set)
        self.users: dict[str, set[asyncio.Transport]] = defaultdict(set)
        self.topic_seq: dict[str, int] = defaultdict(int)
        self.user_seq: dict[str, int] = defaultdict(int)
        self.topic_hist: dict[str, list[bytes]] = defaultdict(list)
        self.user_hist: dict[str, list[bytes]] = defaultdict(list)
        self.conns = 0

    def write_all(self, subs: set[asyncio.Transport], frame: bytes) -> None:
        for t in subs:
            t.write(frame)
            if t.get_write_buffer_size() > MAX_BUFFER:
                t.abort()


HUB = Hub()


class Relay:
    """Topic frames to and from the sibling processes (``--procs`` > 1)."""

    def __init__(self, group: str, index: int, procs: int) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(f"\0{group}-{index}")
        self.sock.setblocking(False)
        self.peers = [f"\0{group}-{i}" for i in range(procs) if i != index]
        self.lost = 0

    def send(self, topic: str, eid: int, frame: bytes) -> None:
        msg = b"%d %s\n%s" % (eid, topic.encode(), frame)
        for p in self.peers:
            try:
                self.sock.sendto(msg, p)
            except OSError:  # a sibling not up yet, or its queue full
                self.lost += 1

    def on_readable(self) -> None:
        while True:
            try:
                msg = self.sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            head, _, frame = msg.partition(b"\n")
            eid_b, _, topic_b = head.partition(b" ")
            topic = topic_b.decode()
            HUB.topic_seq[topic] = max(HUB.topic_seq[topic], int(eid_b))
            hist = HUB.topic_hist[topic]
            hist.append(frame)
            if len(hist) > HISTORY:
                del hist[: len(hist) - HISTORY]
            HUB.write_all(HUB.topics[topic], frame)


RELAY: Relay | None = None


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.t: asyncio.Transport | None = None
        self.buf = b""
        self.sub: tuple[dict[str, set[asyncio.Transport]], str] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sub is not None and self.t is not None:
            HUB.conns -= 1  # open streams, not every TCP connection
            d, k = self.sub
            d[k].discard(self.t)

    def reply(self, status: str, body: bytes) -> None:
        assert self.t is not None
        self.t.write(b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d"
                     b"\r\n\r\n%s" % (status.encode(), len(body), body))

    def data_received(self, data: bytes) -> None:
        if self.sub is not None:
            return
        self.buf += data
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = self.buf[:i].decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            hdrs = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            n = int(hdrs.get("content-length", "0"))
            if len(self.buf) < i + 4 + n:
                return
            body = self.buf[i + 4:i + 4 + n]
            self.buf = self.buf[i + 4 + n:]
            self.route(method, target, hdrs, body)
            if self.sub is not None:
                return

    def route(self, method: str, target: str, hdrs: dict[str, str], body: bytes) -> None:
        path, _, qs = target.partition("?")
        parts = path.split("/")
        last = hdrs.get("last-event-id") or query_param(qs, "lastEventId")
        assert self.t is not None
        if method == "GET" and path == "/api/notifications/stream":
            user = unquote(query_param(qs, "user") or "anon")
            self.subscribe(HUB.users, user, HUB.user_hist[user], last)
        elif method == "GET" and len(parts) == 5 and parts[2] == "topics" and parts[4] == "stream":
            topic = unquote(parts[3])
            self.subscribe(HUB.topics, topic, HUB.topic_hist[topic], last)
        elif method == "POST" and len(parts) == 5 and parts[2] == "topics" and parts[4] == "events":
            topic = unquote(parts[3])
            HUB.topic_seq[topic] += 1
            eid = HUB.topic_seq[topic]
            frame = sse(eid, "activity", topic_event(eid, topic, orjson.loads(body)))
            hist = HUB.topic_hist[topic]
            hist.append(frame)
            if len(hist) > HISTORY:
                del hist[: len(hist) - HISTORY]
            HUB.write_all(HUB.topics[topic], frame)
            if RELAY is not None:
                RELAY.send(topic, eid, frame)
            self.reply("201 Created", b'{"id":"%d"}' % eid)
        elif method == "POST" and path == "/api/notifications":
            req = orjson.loads(body)
            ids: dict[str, str] = {}
            for user in req["recipients"]:
                HUB.user_seq[user] += 1
                nid = HUB.user_seq[user]
                frame = sse(nid, "notification", notification(nid, req))
                hist = HUB.user_hist[user]
                hist.append(frame)
                if len(hist) > HISTORY:
                    del hist[: len(hist) - HISTORY]
                subs = HUB.users.get(user)
                if subs:
                    HUB.write_all(subs, frame)
                ids[user] = str(nid)
            self.reply("201 Created", orjson.dumps({"ids": ids}))
        elif path in ("/readyz", "/healthz"):
            self.reply("200 OK", b'{"ok":true}')
        elif path == "/api/stats":
            self.reply("200 OK", orjson.dumps({"connections": HUB.conns}))
        else:
            self.reply("404 Not Found", b'{"error":"not found"}')

    def subscribe(self, d: dict[str, set[asyncio.Transport]], key: str, hist: list[bytes],
                  last: str | None) -> None:
        assert self.t is not None
        self.t.write(HEAD + RETRY)
        if last:
            after = int(last)
            first_id = (int(hist[0].split(b"id: ", 1)[1].split(b"\n", 1)[0]) if hist else 1)
            start = max(0, after - first_id + 1)
            backlog = hist[start:]
            if backlog:
                self.t.write(b"".join(backlog))
        self.sub = (d, key)
        d[key].add(self.t)
        HUB.conns += 1


async def heartbeat(every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for subs in (*HUB.topics.values(), *HUB.users.values()):
            HUB.write_all(subs, PING)


async def serve(host: str, port: int, hb: float, reuse_port: bool) -> None:
    loop = asyncio.get_running_loop()
    if RELAY is not None:
        loop.add_reader(RELAY.sock.fileno(), RELAY.on_readable)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    server = await loop.create_server(Conn, sock=sock)
    hb_task = asyncio.create_task(heartbeat(hb))
    try:
        await server.serve_forever()
    finally:
        hb_task.cancel()


def run_one(host: str, port: int, hb: float, reuse_port: bool) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as r:
        r.run(serve(host, port, hb, reuse_port))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--heartbeat", type=float, default=15.0)
    ap.add_argument("--procs", type=int, default=1)
    a = ap.parse_args()
    if a.procs <= 1:
        run_one(a.host, a.port, a.heartbeat, False)
        return
    pids = []
    group = f"bench-floor-{os.getpid()}"
    for index in range(a.procs):
        pid = os.fork()
        if pid == 0:
            global RELAY
            RELAY = Relay(group, index, a.procs)
            run_one(a.host, a.port, a.heartbeat, True)
            os._exit(0)
        pids.append(pid)
    import signal

    def stop(*_: object) -> None:
        for p in pids:
            os.kill(p, signal.SIGTERM)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for p in pids:
        os.waitpid(p, 0)


if __name__ == "__main__":
    main()
