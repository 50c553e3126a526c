"""Prometheus metrics for one node (its own registry, so tests can run many apps)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from tocsin.streams.hub import Hub


class Metrics:
    def __init__(self, hub: Hub) -> None:
        self.registry = CollectorRegistry()
        g = Gauge("tocsin_connections", "Open SSE streams on this node", registry=self.registry)
        g.set_function(lambda: hub.connections)
        s = Gauge("tocsin_streams", "Distinct streams with a local subscriber",
                  registry=self.registry)
        s.set_function(lambda: len(hub.streams))
        b = Gauge("tocsin_broker_up", "1 while the broker is connected", registry=self.registry)
        b.set_function(lambda: 1 if hub.broker.healthy else 0)
        self.events = Counter("tocsin_events_total", "Events stored and fanned out, by kind",
                              ["kind"], registry=self.registry)
