"""Helpers for multi-node tests: several real ``tocsin serve`` processes sharing one
PostgreSQL schema and one Redis channel, clients that fail over between nodes the way
a browser behind a load balancer does, and the checks every test ends with."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from tests.support.ids import seq_of
from tests.support.recording import Recording
from tests.support.server import API_KEY, ServerProcess, mint, start_server
from tests.support.sse import StreamReader


def channel_url(base: str, **opts: str) -> str:
    """A Redis broker URL on a channel of its own, so concurrent test runs never meet."""
    q = {"channel": f"cl-{uuid.uuid4().hex[:12]}", **opts}
    sep = "&" if "?" in base else "?"
    return base + sep + "&".join(f"{k}={v}" for k, v in q.items())


async def start_nodes(tmp_path: Path, n: int, *, database: str | Sequence[str],
                      broker: str | Sequence[str], extra: list[str] | None = None,
                      ) -> list[ServerProcess]:
    """Start ``n`` nodes; the first alone (it migrates), the rest in parallel."""
    dbs = [database] * n if isinstance(database, str) else list(database)
    brokers = [broker] * n if isinstance(broker, str) else list(broker)
    args = ["--heartbeat", "1s", "--degraded-poll", "0.5s", *(extra or [])]

    def one(i: int) -> ServerProcess:
        d = tmp_path / f"node{i}"
        d.mkdir(exist_ok=True)
        return start_server(d, database=dbs[i], broker=brokers[i], extra=args)

    first = await asyncio.to_thread(one, 0)
    rest = await asyncio.gather(*(asyncio.to_thread(one, i) for i in range(1, n)))
    return [first, *rest]


def publisher(base_url: str, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(20, connect=3),
                             headers={"Authorization": f"Bearer {API_KEY}"}, **kw)


async def publish_note(client: httpx.AsyncClient, user: str, title: str,
                       key: str | None = None) -> str:
    body: dict[str, Any] = {"recipients": [user], "type": "test", "title": title}
    if key:
        body["idempotencyKey"] = key
    r = await client.post("/api/notifications", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["ids"][user])


async def publish_topic(client: httpx.AsyncClient, topic: str, title: str) -> str:
    r = await client.post(f"/api/topics/{topic}/events", json={"type": "test", "title": title})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@dataclass
class Event:
    id: int
    event: str
    data: dict[str, Any]
    node: str
    wire_id: str = ""
    """The id as sent (``<epoch>-<seq>``): what a client resumes with."""


@dataclass
class FailoverReader(Recording[Event]):
    """An EventSource behind a load balancer: one stream, and when the node ends it or
    goes away, it reconnects to the next node with ``Last-Event-ID``."""

    urls: list[str]
    """Full stream URLs, one per node, in failover order."""
    token: str
    last_id: str | None = None
    connects: int = 0
    ended_by_server: int = 0
    errors: list[str] = field(default_factory=list)
    resets: int = 0
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def _run(self) -> None:
        i = 0
        timeout = httpx.Timeout(5, read=10)  # heartbeats come every second
        while True:
            url = self.urls[i % len(self.urls)]
            headers = {"Authorization": f"Bearer {self.token}"}
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            try:
                async with httpx.AsyncClient(timeout=timeout) as client, aconnect_sse(
                        client, "GET", url, headers=headers) as source:
                    if source.response.status_code != 200:
                        raise httpx.HTTPStatusError(
                            f"status {source.response.status_code}",
                            request=source.response.request, response=source.response)
                    self.connects += 1
                    self._connected.set()
                    async for sse in source.aiter_sse():
                        if not sse.event or sse.event == "message":
                            continue
                        if sse.event == "reset":
                            self.resets += 1
                        self.last_id = sse.id
                        await self._add([Event(seq_of(sse.id), sse.event,
                                               json.loads(sse.data), url, sse.id)])
                self.ended_by_server += 1
            except (httpx.HTTPError, OSError) as exc:
                self.errors.append(f"{url}: {exc!r}")
            i += 1
            await asyncio.sleep(0.05 if self.errors[-1:] == [] else 0.2)

    async def start(self, within: float = 10) -> FailoverReader:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), within)
        return self

    def _describe(self) -> str:
        return f"; connects={self.connects} errors={self.errors[-3:]}"


def stream_urls(nodes: Sequence[ServerProcess], path: str, first: int = 0) -> list[str]:
    order = list(range(first, len(nodes))) + list(range(first))
    return [nodes[i].url + path for i in order]


async def reader(nodes: Sequence[ServerProcess], path: str, user: str,
                 topics: list[str] | None = None, first: int = 0,
                 last_id: str | None = None) -> FailoverReader:
    return await FailoverReader(stream_urls(nodes, path, first), mint(user, topics),
                                last_id=last_id).start()


def assert_exact_sequence(events: Sequence[Event], *, expected_ids: Sequence[int] | None = None,
                          what: str = "stream") -> None:
    """Strictly increasing ids with no gaps (each stream's seqs are 1, 2, 3, ...)."""
    ids = [e.id for e in events]
    dups = len(ids) - len(set(ids))
    assert dups == 0, f"{what}: {dups} duplicated ids"
    assert ids == sorted(ids), f"{what}: ids out of order: {ids[:50]}"
    if ids:
        gaps = sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))
        assert not gaps, f"{what}: missing ids {gaps[:20]}"
    if expected_ids is not None:
        want = list(expected_ids)
        assert ids == want, f"{what}: got {ids[:20]}... expected {want[:20]}..."


async def check_random_resumes(nodes: Sequence[ServerProcess], path: str, token: str,
                               full: Sequence[Event], count: int = 12,
                               rng: random.Random | None = None) -> None:
    """Resume at random points on random nodes: each must get exactly the suffix."""
    rng = rng or random.Random(4)
    points = sorted(rng.sample(range(len(full)), min(count, len(full))))

    async def one(k: int) -> None:
        node = rng.choice(nodes)
        expect = list(full[k + 1:])
        r = await StreamReader(node.url + path, token, full[k].wire_id,
                               stream_events_only=True).start()
        try:
            await r.until(lambda r: len(r.events) >= len(expect) or r.closed_by_server, 10)
            await asyncio.sleep(0.3)  # nothing more may follow the suffix
        finally:
            await r.close()
        got = [(seq_of(e.id), e.data) for e in r.events]
        assert got == [(e.id, e.data) for e in expect], (
            f"resume after {full[k].id} on {node.url}: got {[i for i, _ in got][:10]}..., "
            f"expected {[e.id for e in expect][:10]}...")

    await asyncio.gather(*(one(k) for k in points))



async def readyz(node: ServerProcess) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as c:
        r = await c.get(node.url + "/readyz")
        return r.status_code, r.json()
