"""Helpers for ``tocsin serve --workers 2`` tests: the worker processes under a server,
and reaching one worker in particular through the shared port."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx

from tests.cluster.helpers import channel_url, publisher
from tests.support.server import API_KEY, ServerProcess, start_server
from tests.support.services import REDIS_URL
from tests.support.wait import eventually


async def start_workers(tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess],
                        env: dict[str, str] | None = None) -> ServerProcess:
    """A server of two workers on PostgreSQL and a Redis channel of its own, once both
    worker processes serve (stopped by ``nodes_to_stop``)."""
    srv = await asyncio.to_thread(
        start_server, tmp_path, database=pg_url, broker=channel_url(REDIS_URL),
        extra=["--workers", "2", "--heartbeat", "1s"], env=env, wait=90)
    nodes_to_stop.append(srv)
    await eventually(lambda: len(children(srv.proc.pid)) == 2, 10, "two workers")
    # the supervisor says so once both workers listen (each takes seconds to import)
    await eventually(lambda: "2 workers serving" in srv.log(), 60, "both workers serving")
    return srv


def children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if os.path.exists(f"/proc/{p}")}


async def stats_by_worker(url: str, want: int = 2, within: float = 10) -> dict[str, int]:
    """``node id -> open streams``, asking over fresh connections (each lands on
    whichever worker the kernel picks) until ``want`` workers have answered."""
    seen: dict[str, int] = {}
    deadline = time.monotonic() + within
    while len(seen) < want and time.monotonic() < deadline:
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.get(url + "/api/stats", headers={"Authorization": f"Bearer {API_KEY}"})
            body = r.json()
            seen[body["node"]] = body["connections"]
    return seen


async def client_on(url: str, worker: str, tries: int = 100) -> httpx.AsyncClient:
    """A keep-alive publisher client whose connection landed on ``worker``."""
    for _ in range(tries):
        client = publisher(url)
        r = await client.get("/api/stats")
        if r.json()["node"] == worker:
            return client
        await client.aclose()
    raise AssertionError(f"no connection landed on worker {worker}")
