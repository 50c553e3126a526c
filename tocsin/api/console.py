"""The operators' console (``--console``, on in ``tocsin demo``): the page at
``GET /console`` (plain files from ``tocsin/web/console/``, no build step) and the
publisher routes it reads that no other router answers:

- ``GET /api/console/figures``: the node's own figures (the Prometheus registry
  ``/metrics`` exports, read in process, plus a database ping) sampled every
  ``SAMPLE_EVERY_S`` into a ring of the last ``SAMPLES`` samples, so the page can plot
  the last minutes without a second metrics stack;
- ``GET /api/console/failures``: the channels' recent failures (push gone or given up,
  email failed, webhook paused or failed, ...), kept from the kernel's observation
  seam in a bounded ring (this node's, since it started);
- ``GET /api/console/incidents``: open and recent escalation incidents (each one's
  timeline is ``GET /api/incidents/{id}``);
- ``GET /api/console/presence``: the topics with someone present (who is present is
  ``GET /api/topics/{topic}/presence``).

The trail a search leads to is the trail's own routes (docs/trail.md). See
docs/console.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from starlette.responses import FileResponse, Response

from tocsin.api.deps import PublisherCaller, Service, json_response
from tocsin.events import TOPIC_PREFIX
from tocsin.kernel.observe import Observation
from tocsin.routing import ERRORS
from tocsin.service import Tocsin

log = logging.getLogger("tocsin")

SAMPLE_EVERY_S = 2.0
"""How often the figures are sampled: one pass over the registry and one ``SELECT 1``."""
SAMPLES = 300
"""Samples kept: 10 minutes at ``SAMPLE_EVERY_S``; a sample is a few hundred bytes."""
FAILURES = 200
"""Channel failures kept (newest first in the reply)."""
FAILURE_ENDINGS = ("gone", "failed", "given_up", "paused")
"""A reported kind ``<channel>.<ending>`` with one of these endings is a failure: so a
new channel's failures (``webhook.paused``) show without changing this module."""
INCIDENTS_LIMIT = 100
PRESENCE_TOPICS = 200
DB_PING_TIMEOUT_S = 2.0

CONSOLE_DIR = Path(__file__).parent.parent / "web" / "console"
"""The page and its modules, served as they are."""
ASSETS = "/console/assets"

router = APIRouter(tags=["console"])


@dataclass(frozen=True, slots=True)
class Sample:
    """The node's figures at one moment; counters are totals since the node started."""

    at: int
    connections: dict[str, int]
    websockets: int
    publishes: float
    notifications: float
    deliveries: float
    catch_up: float
    overflows: float
    resets: float
    broker: bool
    database: str


def read_registry(registry: CollectorRegistry) -> dict[str, float]:
    """Every sample of the registry as ``name`` or ``name{label=value}`` (one label at
    most is enough for the figures read here), as ``/metrics`` would print them."""
    out: dict[str, float] = {}
    for family in registry.collect():
        for s in family.samples:
            key = s.name
            if s.labels:
                key += "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"
            out[key] = s.value
    return out


class Figures:
    """The sampler: a task that reads the node's figures every ``SAMPLE_EVERY_S``."""

    def __init__(self, tocsin: Tocsin, every_s: float = SAMPLE_EVERY_S) -> None:
        self.tocsin = tocsin
        self.every_s = every_s
        self.samples: deque[Sample] = deque(maxlen=SAMPLES)

    async def sample(self) -> Sample:
        try:
            await asyncio.wait_for(self.tocsin.store.ping(), DB_PING_TIMEOUT_S)
            database = "ok"
        except Exception as exc:  # what /readyz says too
            database = f"down: {type(exc).__name__}"
        v = read_registry(self.tocsin.metrics.registry)
        return Sample(
            at=self.tocsin.kernel.clock(),
            connections={t: int(v.get(f"tocsin_connections{{transport={t}}}", 0))
                         for t in ("sse", "ws", "poll")},
            websockets=int(v.get("tocsin_websockets", 0)),
            publishes=v.get("tocsin_publish_write_seconds_count", 0),
            notifications=v.get("tocsin_events_total{kind=notification}", 0),
            deliveries=v.get("tocsin_live_offers_total", 0),
            catch_up=v.get("tocsin_catchup_events_total", 0),
            overflows=v.get("tocsin_outbox_overflows_total", 0),
            resets=v.get("tocsin_stream_resets_total", 0),
            broker=v.get("tocsin_broker_up", 0) == 1,
            database=database,
        )

    async def run(self) -> None:
        while True:
            try:
                self.samples.append(await self.sample())
            except Exception:  # a failed sample must never end the sampling
                log.exception("console: sampling the node's figures failed")
            await asyncio.sleep(self.every_s)

    def reply(self) -> dict[str, Any]:
        samples = list(self.samples)
        out: list[dict[str, Any]] = []
        for prev, cur in zip([None, *samples], samples, strict=False):
            out.append(_sample_json(prev, cur))
        return {"node": self.tocsin.hub.node_id, "intervalMs": int(self.every_s * 1000),
                "samples": out}


def _rate(prev: Sample | None, cur: Sample, field: str) -> float:
    if prev is None or cur.at <= prev.at:
        return 0.0
    delta: float = getattr(cur, field) - getattr(prev, field)
    return round(max(delta, 0) * 1000 / (cur.at - prev.at), 2)


def _sample_json(prev: Sample | None, cur: Sample) -> dict[str, Any]:
    def since(field: str) -> int:
        return 0 if prev is None else int(max(getattr(cur, field) - getattr(prev, field), 0))

    return {
        "at": cur.at, "connections": cur.connections, "webSockets": cur.websockets,
        "publishesPerSecond": _rate(prev, cur, "publishes"),
        "notificationsPerSecond": _rate(prev, cur, "notifications"),
        "deliveriesPerSecond": _rate(prev, cur, "deliveries"),
        "catchUpPerSecond": _rate(prev, cur, "catch_up"),
        "overflows": since("overflows"), "resets": since("resets"),
        "totals": {"publishes": int(cur.publishes), "deliveries": int(cur.deliveries),
                   "overflows": int(cur.overflows), "resets": int(cur.resets)},
        "broker": "ok" if cur.broker else "down", "database": cur.database,
    }


_ENDINGS = tuple("." + e for e in FAILURE_ENDINGS)


def is_failure(kind: str) -> bool:
    """``push.gone``, ``email.failed``, ``webhook.paused``, ...: one C-level check a
    report's item (the observer runs on the reporting path)."""
    return kind.endswith(_ENDINGS) and not kind.startswith("notification.")


def _reason(detail: Any) -> str:
    """The failure's reason as one line: the SMTP reply, the reason, the status."""
    if not isinstance(detail, dict):
        return ""
    for key in ("reply", "reason", "error", "status"):
        value = detail.get(key)
        if value not in (None, ""):
            return str(value)
    return ""


class Failures:
    """The observer: keeps the failures it is shown (only queues; never blocks)."""

    def __init__(self) -> None:
        self.items: deque[Observation] = deque(maxlen=FAILURES)

    def __call__(self, items: Sequence[Observation]) -> None:
        self.items.extend(o for o in items if is_failure(o.kind))

    def reply(self, channel: str | None) -> dict[str, Any]:
        out = []
        for o in reversed(self.items):
            name, _, what = o.kind.partition(".")
            if channel and name != channel:
                continue
            # ``target``: a named webhook target's post (an escalation step) has no
            # user; its target's name says where it failed
            out.append({"at": o.at, "channel": name, "kind": o.kind, "what": what,
                        "user": o.user, "target": o.detail.get("target"),
                        "notification": o.notification,
                        "reason": _reason(o.detail), "detail": dict(o.detail)})
        return {"failures": out, "kept": FAILURES}


@dataclass(slots=True)
class ConsoleState:
    figures: Figures
    failures: Failures


async def get_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


Console = Annotated[ConsoleState, Depends(get_state)]
Channel = Annotated[str | None, Query(max_length=40, pattern=r"^[a-z][a-z0-9_-]*$")]
State = Literal["open", "recent"]


@router.get("/api/console/figures", responses=ERRORS)
async def figures(_: PublisherCaller, console: Console) -> Response:
    """This node's figures over the last minutes: connections by transport, publishes,
    notifications, deliveries and catch-up per second, outbox overflows and resets per
    interval, broker and database state (oldest first, one every ``intervalMs``)."""
    return json_response(console.figures.reply())


@router.get("/api/console/failures", responses=ERRORS)
async def failures(_: PublisherCaller, console: Console, channel: Channel = None) -> Response:
    """The channels' recent failures on this node, newest first: ``{at, channel, kind,
    what, user, target, notification, reason, detail}`` (``target``: a named webhook
    target's name, its ``user`` null); ``?channel=push`` for one channel."""
    return json_response(console.failures.reply(channel))


@router.get("/api/console/incidents", responses=ERRORS)
async def incident_list(_: PublisherCaller, tocsin: Service,
                        state: Annotated[State, Query()] = "recent",
                        limit: Annotated[int, Query(ge=1, le=INCIDENTS_LIMIT)] = 50) -> Response:
    """Escalation incidents, newest first: ``state=open`` the open ones, ``recent``
    (default) every state. Each one's timeline: ``GET /api/incidents/{id}``."""
    if not tocsin.kernel.has_database:
        return json_response({"incidents": []})
    from tocsin.store.incidents import incidents as table

    c = table.c
    query = select(c.id, c.policy_name, c.state, c.created_at, c.acked_by, c.acked_at,
                   c.note, c.next_at).order_by(c.created_at.desc(), c.id).limit(limit)
    if state == "open":
        query = query.where(c.state == "open")
    async with tocsin.kernel.db.read() as conn:
        rows = (await conn.execute(query)).all()
    return json_response({"incidents": [_incident_json(r) for r in rows]})


def _incident_json(r: Any) -> dict[str, Any]:
    import orjson

    try:
        note = orjson.loads(r.note)
    except orjson.JSONDecodeError:
        note = {}
    title = note.get("title") if isinstance(note, dict) else None
    return {"id": r.id, "policy": r.policy_name, "state": r.state, "createdAt": r.created_at,
            "title": title if isinstance(title, str) else None, "ackedBy": r.acked_by,
            "ackedAt": r.acked_at, "nextAt": r.next_at}


@router.get("/api/console/presence", responses=ERRORS)
async def presence_topics(_: PublisherCaller, tocsin: Service) -> Response:
    """The topics someone holds open on any node, most members first (at most
    ``PRESENCE_TOPICS``): ``{topics: [{topic, members}]}``."""
    counts = []
    for stream, members in list(tocsin.hub.presence.table.by_stream.items()):
        if stream.startswith(TOPIC_PREFIX):
            n = 1 if isinstance(members, tuple) else len(members)
            if n:
                counts.append((stream[len(TOPIC_PREFIX):], n))
    counts.sort(key=lambda t: (-t[1], t[0]))
    return json_response({"topics": [{"topic": t, "members": n}
                                     for t, n in counts[:PRESENCE_TOPICS]]})




def install(app: FastAPI, tocsin: Tocsin) -> None:
    """Mount the page, its files and its routes; subscribe to the observations and
    start the sampler with the app."""
    web = CONSOLE_DIR
    state = ConsoleState(Figures(tocsin), Failures())
    tocsin.kernel.observations.subscribe(state.failures)
    app.state.console = state

    async def start_sampling(app: FastAPI) -> None:
        app.state.tasks.append(asyncio.create_task(state.figures.run(),
                                                   name="tocsin-console-figures"))

    app.state.on_start.append(start_sampling)

    @app.get("/console", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(web / "index.html", media_type="text/html")

    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=web), name="console")
