"""Operating ``tocsin serve --workers 2`` (issue 28): ``/metrics`` is the node's total
whichever worker answers, and every log line says when and who wrote it."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
from collections.abc import Iterable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.broker.redis_server import PrivateRedis
from tests.cluster.helpers import channel_url, publisher
from tests.cluster.workers import start_workers
from tests.support.server import ServerProcess, mint, start_server
from tests.support.wait import eventually

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
MONOTONIC = ("_total", "_count", "_sum", "_bucket")
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ "
                  r"\[(supervisor|worker \d+) pid \d+\] \S+: ")


def parse(text: str) -> Series:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def one(series: Series, name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


async def scrape(url: str) -> Series:
    # a fresh connection each time: the kernel hands it to either worker
    async with httpx.AsyncClient(timeout=10) as c:
        r = await c.get(url + "/metrics")
        assert r.status_code == 200, r.text
        return parse(r.text)


async def test_metrics_are_the_node_total_and_never_go_backwards(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess]) -> None:
    srv = await start_workers(tmp_path, pg_url, nodes_to_stop)
    stop = asyncio.Event()
    created = 0

    async def keep_publishing(n: int) -> None:
        nonlocal created
        while not stop.is_set():
            # a fresh client now and then, so publishes land on both workers
            async with publisher(srv.url) as pub:
                for _ in range(5):
                    r = await pub.post("/api/notifications", json={
                        "recipients": [f"m{n}"], "type": "t", "title": "t"})
                    assert r.status_code == 201, r.text
                    created += 1

    publishers = [asyncio.create_task(keep_publishing(n)) for n in range(4)]
    await eventually(lambda: created >= 20, 20, "publishes to start")
    scrapes = []
    for _ in range(20):
        scrapes.append(await scrape(srv.url))
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*publishers)

    for before, after in itertools.pairwise(scrapes):
        for key, value in before.items():
            if key[0].endswith(MONOTONIC) and key in after:
                assert after[key] >= value, f"{key} went from {value} to {after[key]}"
    assert one(scrapes[-1], "tocsin_events_total", kind="notification") > \
        one(scrapes[0], "tocsin_events_total", kind="notification")

    # once publishing stopped, every scrape (whichever worker answers) counts them all
    for _ in range(4):
        final = await scrape(srv.url)
        assert one(final, "tocsin_events_total", kind="notification") == created
        assert one(final, "tocsin_requests_total", route="publish", status="201") == created
        assert one(final, "tocsin_publish_write_seconds_count") == created
        # per worker, not added up: memory, open files, CPU of each process
        for worker in ("0", "1"):
            assert one(final, "process_resident_memory_bytes", worker=worker) > 0
            assert one(final, "process_open_fds", worker=worker) > 0
            assert one(final, "process_cpu_seconds_total", worker=worker) > 0
        assert one(final, "tocsin_broker_up") == 1
        assert one(final, "tocsin_database_up") == 1
        # the pool setting of both workers added up: the node's share of the database
        assert one(final, "tocsin_database_pool_connections", state="size") >= 2
        assert one(final, "tocsin_delivery_lag_seconds_count") > 0


def check_lines(log: str) -> list[str]:
    lines = [line for line in log.splitlines() if line.strip()]
    bad = [line for line in lines if not LINE.match(line)]
    assert not bad, "log lines without a timestamp and a writer:\n" + "\n".join(bad[:20])
    return lines


def index_of(lines: list[str], pattern: str) -> int:
    for i, line in enumerate(lines):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"no log line matches {pattern!r}")


def matching(lines: Iterable[str], pattern: str) -> list[str]:
    return [line for line in lines if re.search(pattern, line)]


async def test_every_log_line_of_a_workers_run_has_a_time_and_a_writer(
        tmp_path: Path, pg_url: str, nodes_to_stop: list[ServerProcess],
        private_redis: PrivateRedis) -> None:
    srv = await asyncio.to_thread(
        start_server, tmp_path, database=pg_url, broker=channel_url(private_redis.url),
        extra=["--workers", "2", "--heartbeat", "1s", "--degraded-poll", "200ms"], wait=90)
    nodes_to_stop.append(srv)
    await eventually(lambda: "2 workers serving" in srv.log(), 20, "both workers serving")
    async with publisher(srv.url) as pub:
        r = await pub.post("/api/notifications",
                           json={"recipients": ["lg"], "type": "t", "title": "t"})
        assert r.status_code == 201
    token = mint("lg")
    async with httpx.AsyncClient(timeout=30) as c, c.stream(
            "GET", srv.url + "/api/notifications/stream",
            headers={"Authorization": f"Bearer {token}"}) as stream:
        assert stream.status_code == 200

        # a Redis outage of a few seconds: many reconnect attempts per worker
        private_redis.stop()
        await eventually(lambda: len(matching(srv.log().splitlines(),
                                              r"Redis broker .* lost: ")) == 2,
                         10, "both workers to log the outage")
        await asyncio.sleep(3)
        outage = await scrape(srv.url)
        assert one(outage, "tocsin_broker_up") == 0
        private_redis.start()
        await eventually(lambda: len(matching(srv.log().splitlines(),
                                              r"Redis broker .* back after")) == 2,
                         15, "both workers to log the recovery")
        back = await scrape(srv.url)
        assert one(back, "tocsin_broker_degraded_seconds_total") >= 2 * 3
        assert one(back, "tocsin_sweeps_total") >= 1

        srv.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(srv.proc.wait, 30) == 0

    lines = check_lines(srv.log())
    # "2 workers serving" only once both workers reported ready
    serving = index_of(lines, r"2 workers serving")
    assert serving > index_of(lines, r"\[supervisor .*worker 0 ready")
    assert serving > index_of(lines, r"\[supervisor .*worker 1 ready")
    # the outage: once per worker as it starts (with its cause), once as it ends
    for worker in ("0", "1"):
        mine = [line for line in lines if f"[worker {worker} " in line]
        warnings = matching(mine, r" WARNING .*tocsin.broker")
        assert len(warnings) == 2, "\n".join(warnings)
        assert re.search(r"lost: .*(refused|closed|Connection|reset)", warnings[0]), warnings[0]
        assert re.search(r"back after \d+\.\ds \(\d+ reconnect attempts; last error: "
                         r"\w+Error: .*\S", warnings[1]), warnings[1]
        # the shutdown summary
        assert matching(mine, r"stopped in \d+\.\ds: \d+ streams closed")
    assert len(matching(lines, r"stopped in \d+\.\ds: 1 streams closed")) == 1
    assert matching(lines, r"\[supervisor .*2 workers stopped in \d+\.\ds")
