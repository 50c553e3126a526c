"""Liveness, readiness, node stats and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
import time

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from tocsin import workermetrics
from tocsin.api.deps import PublisherCaller, Service, json_response
from tocsin.config import redact_url
from tocsin.errors import TocsinError
from tocsin.metrics import LOWEST, PER_WORKER
from tocsin.store.base import Store

router = APIRouter(tags=["health"])
STATS_HOLDERS = 10
"""Users listed in ``/api/stats`` ``largestHolders`` (most open streams first)."""



@router.get("/healthz")
async def healthz() -> Response:
    """The process is alive."""
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(tocsin: Service) -> Response:
    """200 while the database answers. The broker being down is reported as
    ``degraded`` but stays 200: the node still stores and delivers (from the store)."""
    try:
        await asyncio.wait_for(tocsin.store.ping(), 3)
        db = "ok"
    except Exception as exc:
        db = f"down: {type(exc).__name__}"
    broker = "ok" if tocsin.hub.broker.healthy else "down"
    status = "ok" if db == "ok" and broker == "ok" else ("degraded" if db == "ok" else "down")
    if tocsin.hub.closing:
        status = "shutting down"
    body = {"status": status, "database": db, "broker": broker}
    return json_response(body, 200 if status in ("ok", "degraded") else 503)


@router.get("/api/stats", tags=["health"])
async def stats(_: PublisherCaller, tocsin: Service) -> Response:
    """This node's open streams and broker state."""
    hub = tocsin.hub
    return json_response({
        "node": hub.node_id,
        "connections": hub.connections,
        "webSockets": hub.sockets,
        "streams": len(hub.streams),
        "largestHolders": [{"user": user, "streams": n}
                           for user, n in hub.largest_holders(STATS_HOLDERS)],
        "broker": {"url": redact_url(hub.broker.url), "healthy": hub.broker.healthy},
        "database": redact_url(tocsin.store.url),
    })


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, tocsin: Service) -> Response:
    """Prometheus metrics. With ``--metrics-key`` set, only for
    ``Authorization: Bearer <metrics key>``; without it, open (bind it privately)."""
    key: str = request.app.state.settings.metrics_key
    if key:
        given = request.headers.get("authorization", "")
        token = given[7:].strip() if given[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(token.encode(), key.encode()):
            raise TocsinError("unauthorized", "/metrics needs 'Authorization: Bearer "
                              "<metrics key>' (TOCSIN_METRICS_KEY).")
    metrics = tocsin.metrics
    metrics.observe_database(*await _database_health(tocsin.store))
    own = generate_latest(metrics.registry)
    siblings: tuple[str, str] | None = request.app.state.worker_metrics
    if siblings is None:  # a single process: its own series are the node's
        return Response(own, media_type=CONTENT_TYPE_LATEST)
    directory, index = siblings
    try:
        texts = await workermetrics.gather(directory, index, own)
    except workermetrics.SiblingsUnavailable as exc:
        # a total without that worker's share would read as a counter reset: this
        # scrape fails (Prometheus marks it down) instead
        return Response(f"{exc}\n", status_code=503, media_type="text/plain")
    body = workermetrics.merge(texts, per_worker=PER_WORKER, lowest=LOWEST)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _database_health(store: Store) -> tuple[bool, float, dict[str, int] | None]:
    """Whether the database answers a ping (3 s at most), how long it took, and the
    connection pool's use (SQLAlchemy's queue pool: in use, idle, overflow, size)."""
    began = time.perf_counter()
    try:
        await asyncio.wait_for(store.ping(), 3)
        up = True
    except Exception:
        up = False
    took = time.perf_counter() - began
    pool = getattr(getattr(store, "engine", None), "pool", None)
    if pool is None or not hasattr(pool, "checkedout"):
        return up, took, None
    return up, took, {"in_use": pool.checkedout(), "idle": pool.checkedin(),
                      "overflow": max(0, pool.overflow()), "size": pool.size()}
