"""``tocsin serve --workers 2``: two processes on one port, fanning out through Redis;
a killed worker is replaced and its clients resume without loss."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cluster.helpers import (
    FailoverReader,
    assert_exact_sequence,
    publish_note,
    publisher,
)
from tests.cluster.workers import alive, children, client_on, start_workers, stats_by_worker
from tests.support.server import API_KEY, JWT_SECRET, ServerProcess, mint
from tests.support.wait import eventually

INBOX = "/api/notifications/stream"
USERS = [f"w{i}" for i in range(16)]


def test_workers_refused_with_the_memory_broker(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tocsin", "serve", "--workers", "2", "--port", "0",
         "--database", f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
         "--api-key", API_KEY, "--jwt-secret", JWT_SECRET],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "crosses processes" in proc.stderr and "redis://" in proc.stderr, proc.stderr


@pytest.mark.postgres
@pytest.mark.redis
async def test_two_workers_share_a_port_and_survive_a_killed_worker(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    srv = await start_workers(tmp_path, pg_url, nodes_to_stop)
    assert len(await stats_by_worker(srv.url)) == 2, "the second worker never answered"

    readers = [await FailoverReader([srv.url + INBOX], mint(u)).start() for u in USERS]
    spread = await stats_by_worker(srv.url)
    assert sum(spread.values()) == len(USERS) and all(spread.values()), \
        f"streams were not spread over both workers: {spread}"

    acked: dict[str, list[str]] = {u: [] for u in USERS}

    async def publish_round(tag: str) -> None:
        # a fresh connection per publish: each lands on either worker
        async def one(u: str) -> None:
            async with publisher(srv.url) as p:
                nid = await publish_note(p, u, f"{tag} for {u}", key=f"{tag}-{u}")
            if nid not in acked[u]:  # a retried round repeats the ones that went through
                acked[u].append(nid)
        await asyncio.gather(*(one(u) for u in USERS))

    # Every user gets one notification through each worker, so every stream, on
    # whichever worker it lives, receives one published through the other.
    for worker in spread:
        client = await client_on(srv.url, worker)
        try:
            for u in USERS:
                acked[u].append(await publish_note(client, u, f"via {worker}"))
        finally:
            await client.aclose()
    for rd in readers:
        await rd.wait_for(2, timeout=5)

    # Kill one worker while publishing continues.
    pids = children(srv.proc.pid)
    victim = sorted(pids)[0]
    stop = asyncio.Event()

    async def keep_publishing() -> int:
        k = 1
        while not stop.is_set():
            for _ in range(5):
                try:
                    await publish_round(f"r{k}")
                    break
                except (httpx.TransportError, AssertionError):
                    await asyncio.sleep(0.1)  # the killed worker's connection: retry
            k += 1
            await asyncio.sleep(0.05)
        return k

    pub = asyncio.create_task(keep_publishing())
    await asyncio.sleep(0.3)
    os.kill(victim, signal.SIGKILL)
    await eventually(lambda: len(children(srv.proc.pid) - {victim}) == 2, 10,
                     "a replacement worker")
    new_workers = children(srv.proc.pid) - pids
    assert len(new_workers) == 1
    # the replacement takes seconds to import and start: the supervisor logs it ready
    await eventually(lambda: srv.log().count(" ready (pid ") == 3, 60, "the replacement ready")
    assert len(await stats_by_worker(srv.url)) == 2
    await asyncio.sleep(1.0)
    stop.set()
    await pub

    moved = 0
    for u, rd in zip(USERS, readers, strict=True):
        events = await rd.wait_for(len(acked[u]), timeout=10)
        assert_exact_sequence(events, expected_ids=range(1, len(acked[u]) + 1), what=u)
        assert [e.data["id"] for e in events] == acked[u]
        moved += rd.connects > 1
    assert moved > 0, "no client was on the killed worker"
    for rd in readers:
        await rd.close()

    # SIGTERM to the supervisor stops every worker gracefully.
    t0 = time.monotonic()
    assert srv.terminate(timeout=30) == 0
    assert time.monotonic() - t0 < 20
    assert not alive((pids | new_workers) - {victim})


@pytest.mark.postgres
@pytest.mark.redis
async def test_two_workers_on_a_shared_socket(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    """Where SO_REUSEPORT is missing the workers accept from one inherited socket."""
    srv = await start_workers(tmp_path, pg_url, nodes_to_stop, env={"TOCSIN_NO_REUSEPORT": "1"})
    assert "shared socket" in srv.log()
    readers = [await FailoverReader([srv.url + INBOX], mint(u)).start() for u in USERS]
    async with publisher(srv.url) as p:
        ids = {u: await publish_note(p, u, "hi") for u in USERS}
    spread = await stats_by_worker(srv.url, within=5)
    assert len(spread) == 2 and sum(spread.values()) == len(USERS), spread
    for u, rd in zip(USERS, readers, strict=True):
        events = await rd.wait_for(1, timeout=5)
        assert [e.data["id"] for e in events] == [ids[u]]
        await rd.close()
    assert srv.terminate(timeout=30) == 0


def test_workers_that_cannot_start_are_reported(tmp_path: Path) -> None:
    """A worker that dies at start-up (here: an unusable database path) makes the
    supervisor exit 1 with a message, instead of restarting it forever."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tocsin", "serve", "--workers", "2", "--port", "0",
         "--database", f"sqlite+aiosqlite:///{blocker / 'sub' / 't.db'}",
         "--broker", "redis://127.0.0.1:1/0", "--api-key", API_KEY,
         "--jwt-secret", JWT_SECRET],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "worker 0 did not start" in proc.stderr
    assert time.monotonic() - t0 < 30
