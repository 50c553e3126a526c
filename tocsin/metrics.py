"""Prometheus metrics for one node (its own registry, so tests can run many apps).

A leaf: the kernel, the gate and the features all count here, so this module imports
nothing of theirs. What it reads of the hub at scrape time is the small
:class:`HubGauges` protocol below, which ``tocsin.streams.hub.Hub`` satisfies as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class StreamGauges(Protocol):
    """What a scrape reads of one open stream (``streams.connection.Connection``)."""

    @property
    def json(self) -> bool:
        """JSON frames (WebSocket or long-poll) rather than SSE."""

    @property
    def outbox_bytes(self) -> int: ...


class BrokerGauges(Protocol):
    @property
    def healthy(self) -> bool: ...


class HubGauges(Protocol):
    """What a scrape reads of the node's hub (``streams.hub.Hub``): its open streams
    and sockets, its broker's health and its plain-int counters
    (``streams.connection.StreamCounters``, read by the attribute names in
    ``_STREAM_COUNTERS``)."""

    @property
    def streams(self) -> Mapping[str, Collection[StreamGauges]]: ...

    @property
    def broker(self) -> BrokerGauges: ...

    @property
    def sockets(self) -> int: ...

    @property
    def idle_sockets(self) -> int: ...

    @property
    def counters(self) -> object: ...

    @property
    def degraded_seconds(self) -> float:
        """Seconds this node has spent with its broker down, the current outage included."""

    on_lag: Callable[[float], None]
    """Called with a sampled delivery lag (seconds): ``Metrics`` sets it."""


PER_WORKER = ("process_",)
"""Series that ``workermetrics.merge`` labels by worker instead of adding up."""
LOWEST = frozenset({"tocsin_broker_up", "tocsin_database_up"})
"""Gauges that ``workermetrics.merge`` reports as the lowest worker's value."""


class Metrics:
    def __init__(self, hub: HubGauges) -> None:
        self.registry = CollectorRegistry()
        s = Gauge("tocsin_streams", "Distinct streams with a local subscriber",
                  registry=self.registry)
        s.set_function(lambda: len(hub.streams))
        b = Gauge("tocsin_broker_up", "1 while the broker is connected", registry=self.registry)
        b.set_function(lambda: 1 if hub.broker.healthy else 0)
        self.events = Counter("tocsin_events_total", "Events stored and fanned out, by kind",
                              ["kind"], registry=self.registry)
        q = Gauge("tocsin_outbox_bytes", "Bytes queued for slow streams on this node",
                  registry=self.registry)
        q.set_function(lambda: sum(c.outbox_bytes for cs in hub.streams.values() for c in cs))
        self.rejections = Counter(
            "tocsin_rejections_total", "Requests refused before any route ran, by reason "
            "(the error code: rate_limited, unauthorized, forbidden, payload_too_large, ...)",
            ["reason"], registry=self.registry)
        self.ratelimit_errors = Counter(
            "tocsin_ratelimit_errors_total", "Rate limit checks that failed open (Redis "
            "unreachable: the request went through unchecked)", registry=self.registry)
        self.publish_seconds = Histogram(
            "tocsin_publish_write_seconds", "From a publish reaching the service to its "
            "commit (group commit wait included)", registry=self.registry,
            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.timers_given_up = Counter(
            "tocsin_timers_given_up_total", "Durable timers deleted because they could "
            "never succeed (failed 15 times, or refused input), by kind; an escalation's "
            "incident then shows state failed", ["kind"], registry=self.registry)
        self.registry.register(_StreamCollector(hub))
        # memory, open files, CPU of this process (per worker under --workers)
        ProcessCollector(registry=self.registry)
        self.delivery_lag = Histogram(
            "tocsin_delivery_lag_seconds", "From a publish's commit to its events written "
            "(or queued) to this node's connections, sampled (one batch in "
            "LAG_SAMPLE_EVERY per node); events from other nodes include the broker hop",
            registry=self.registry,
            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        hub.on_lag = self.delivery_lag.observe
        self.requests = RequestCounts()
        self.registry.register(self.requests)
        self.database_up = Gauge("tocsin_database_up", "1 if the database answered the "
                                 "last scrape's ping (within 3 s)", registry=self.registry)
        self.database_ping = Gauge("tocsin_database_ping_seconds", "How long the last "
                                   "scrape's database ping took", registry=self.registry)
        self.pool = Gauge("tocsin_database_pool_connections", "The database connection "
                          "pool at the last scrape: in_use (checked out), idle, overflow "
                          "(opened above the pool size), size (the pool's size setting)",
                          ["state"], registry=self.registry)

    def observe_database(self, up: bool, seconds: float,
                         pool: Mapping[str, int] | None) -> None:
        """What a scrape found of the database (``api/health.py`` pings it)."""
        self.database_up.set(1 if up else 0)
        self.database_ping.set(seconds)
        for state, n in (pool or {}).items():
            self.pool.labels(state).set(n)


class RequestCounts(Collector):
    """``tocsin_requests_total{route, status}``: plain-int counts the gate bumps once per
    response (a dict lookup, no label object), exported at scrape time."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def count(self, route: str, status: int) -> None:
        key = (route, status)
        self.counts[key] = self.counts.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "tocsin_requests", "HTTP requests answered, by route class (publish, stream, "
            "poll, api, health, metrics, other) and status (a stream as the gate admits "
            "or refuses it; a publish's 503 is store_unavailable: the database did not "
            "answer)", labels=["route", "status"])
        for (route, status), n in sorted(self.counts.items()):
            family.add_metric([route, str(status)], n)
        yield family


_STREAM_COUNTERS = (
    # (metric, StreamCounters attribute, help)
    ("tocsin_live_offers", "live_offers",
     "Events offered live to this node's connections (each then goes out live, or, for "
     "a client that is behind, through catch-up: see tocsin_catchup_events)"),
    ("tocsin_catchup_reads", "catch_up_reads",
     "Store reads by streams catching up (replay, gaps, slow clients)"),
    ("tocsin_catchup_events", "catch_up_events", "Events streams queued from those reads"),
    ("tocsin_outbox_overflows", "overflows",
     "Live events a stream left to the store because its client's outbox was full"),
    ("tocsin_stream_resets", "resets", "reset events sent (position not continuable)"),
    ("tocsin_streams_refused", "refused", "Streams refused by the per-user cap (429; a "
     "WebSocket over the cap is closed with 4008)"),
    ("tocsin_ws_unread_closes", "unread_closes",
     "WebSockets closed (4008) because their client let control replies pile up unread"),
    ("tocsin_broker_publish_failures", "publish_failures",
     "Fan-outs the broker refused (down or reconnecting): the events were stored, and "
     "the other nodes find them by sweeping"),
    ("tocsin_sweeps", "sweeps",
     "Sweeps: every local stream's head read from the store (after a broker outage, "
     "while degraded every --degraded-poll, and as a safety net)"),
)


def transport_of(conn: StreamGauges) -> str:
    """``sse``, ``ws`` (JSON frames woken by a socket's writer) or ``poll``."""
    if not conn.json:
        return "sse"
    return "ws" if getattr(conn, "wake", None) is not None else "poll"


class _StreamCollector(Collector):
    """The hub's plain-int stream counters, read at scrape time (nothing per event)."""

    def __init__(self, hub: HubGauges) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        by_transport = {"sse": 0, "ws": self.hub.idle_sockets, "poll": 0}
        for conns in list(self.hub.streams.values()):
            for c in conns:
                by_transport[transport_of(c)] += 1
        gauge = GaugeMetricFamily("tocsin_connections", "Open streams on this node by "
                                  "transport (a WebSocket counts once per subscription, "
                                  "once while it has none; a long-poll while it waits)",
                                  labels=["transport"])
        for name, n in by_transport.items():
            gauge.add_metric([name], n)
        yield gauge
        yield GaugeMetricFamily("tocsin_websockets", "Open WebSocket sockets on this node",
                                value=self.hub.sockets)
        counters = self.hub.counters
        for name, attr, text in _STREAM_COUNTERS:
            yield CounterMetricFamily(name, text, value=getattr(counters, attr))
        yield CounterMetricFamily(
            "tocsin_broker_degraded_seconds", "Time spent with the broker down (serving "
            "degraded: streams polled from the store)", value=self.hub.degraded_seconds)
