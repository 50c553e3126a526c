"""One node's ``/metrics`` under ``tocsin serve --workers N``: every worker's series,
added up, whichever worker the kernel hands the scrape to.

A leaf (prometheus_client and asyncio only). How it works: the supervisor creates a
directory for the run (:data:`ENV_METRICS_DIR`, removed when it exits); each worker
answers on a Unix socket there, ``<index>.sock``, with its own registry's exposition
text (:func:`serve_own`). The worker that receives a scrape reads its siblings'
texts (:func:`gather`) and merges them with its own (:func:`merge`):

- counters, histograms and gauges are summed per series (so a counter only goes
  down if a worker restarts: that worker's share starts again from 0, as a single
  process's would);
- the gauges named in ``lowest`` take the lowest value (``tocsin_broker_up``: 1 only
  while every worker is connected);
- series whose name starts with one of ``per_worker`` (``process_``: memory, open
  files, CPU) are not added up but given a ``worker`` label;
- ``_created`` samples (a process's start time per series) are dropped.

A sibling that does not answer within :data:`SIBLING_TIMEOUT_S` fails the scrape
(:class:`SiblingsUnavailable`, a 503) rather than answering a total without its
share, which Prometheus would read as a counter reset. A sibling whose socket
refuses (it died; the supervisor is replacing it) is left out.

Why not prometheus_client's multiprocess mode: it is set per Python process before
the first metric exists (tests run many nodes in one process, each with its own
registry), it supports neither the scrape-time collectors the hub's gauges and
counters use (nothing is counted per event on the live path) nor the process
collector, and it leaves a file per metric per worker pid to clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

ENV_METRICS_DIR = "TOCSIN_METRICS_DIR"
"""The run's directory of worker sockets, set by the supervisor for its workers."""
SIBLING_TIMEOUT_S = 2.0
MAX_TEXT_BYTES = 64 * 1024 * 1024


class SiblingsUnavailable(Exception):
    """A worker of this node did not answer: the scrape would undercount."""


def socket_path(directory: str, index: str) -> str:
    return os.path.join(directory, f"{index}.sock")


async def serve_own(directory: str, index: str,
                    registry: CollectorRegistry) -> asyncio.AbstractServer:
    """Answer this worker's own exposition text on ``<directory>/<index>.sock``."""

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(generate_latest(registry))
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    path = socket_path(directory, index)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by this slot's previous worker (killed)
    return await asyncio.start_unix_server(answer, path=path)


async def _read_sibling(directory: str, index: str) -> bytes | None:
    try:
        async with asyncio.timeout(SIBLING_TIMEOUT_S):
            reader, writer = await asyncio.open_unix_connection(socket_path(directory, index))
            try:
                return await reader.read(MAX_TEXT_BYTES)
            finally:
                writer.close()
    except (ConnectionRefusedError, FileNotFoundError):
        return None  # that worker is gone (being replaced): its share is gone too
    except (TimeoutError, OSError) as exc:
        raise SiblingsUnavailable(f"worker {index} of this node did not answer its "
                                  f"metrics within {SIBLING_TIMEOUT_S}s: {exc!r}") from exc


async def gather(directory: str, index: str, own: bytes) -> dict[str, bytes]:
    """Every live worker's exposition text by worker index, this one's (``own``) included."""
    others = sorted(name[:-5] for name in os.listdir(directory)
                    if name.endswith(".sock") and name[:-5] != index)
    texts = await asyncio.gather(*(_read_sibling(directory, i) for i in others))
    found = {i: t for i, t in zip(others, texts, strict=True) if t is not None}
    return {index: own, **found}


def merge(texts: dict[str, bytes], *, per_worker: tuple[str, ...],
          lowest: frozenset[str]) -> bytes:
    """The workers' texts as one (see the module's rules)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for worker, text in sorted(texts.items()):
        for fam in text_string_to_metric_families(text.decode()):
            merged = families.get(fam.name)
            if merged is None:
                merged = families[fam.name] = Metric(fam.name, fam.documentation, fam.type)
                values[fam.name] = {}
            series = values[fam.name]
            labelled = fam.name.startswith(per_worker)
            pick: Callable[[float, float], float] = min if fam.name in lowest else _add
            for s in fam.samples:
                if s.name.endswith("_created"):
                    continue
                labels = {**s.labels, "worker": worker} if labelled else s.labels
                key = (s.name, tuple(sorted(labels.items())))
                series[key] = pick(series[key], s.value) if key in series else s.value
    for name, series in values.items():
        for (sample, pairs), value in series.items():
            families[name].add_sample(sample, dict(pairs), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families.values()))
    return generate_latest(registry)


def _add(a: float, b: float) -> float:
    return a + b


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)
