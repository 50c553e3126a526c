"""``EventWebhooks``: the app's backend hears what happened to its notifications
(docs/webhooks.md, "Event webhooks").

The path of one event:

1. Something happens in the one place it is decided (a read in the store's read-state
   change, an ack or an escalation step in the incidents store, a gone push
   subscription in the push channel's delete, an unsubscribe in the preferences'
   write), which passes a :class:`~tocsin.store.outbox.Happening` to
   ``Database.happened`` inside its own transaction.
2. This feature is the database's outbox (``kernel.db.outbox``): when some unpaused
   subscription wants the kind (:meth:`EventWebhooks.wants`, this node's view, no
   I/O), one ``INSERT … SELECT`` writes a durable timer per subscription wanting it,
   in that transaction: the event commits with the change or not at all, and a node
   killed right after the commit delivers it after its restart.
3. The scheduler fires each timer: :meth:`EventWebhooks._deliver` signs the event
   (Standard Webhooks, ``webhook-id`` = the event's id, the same on every retry) and
   POSTs it through ``tocsin.outbound`` (the address checked at send time, a
   timeout, no redirects, the reply capped). A 2xx ends it; anything else retries
   with backoff (``Retry-After`` honoured) until ``--event-webhook-give-up`` has
   passed since the event, then it is recorded as failed. ``--event-webhook-pause-after``
   failed attempts in a row pause the subscription; a PUT resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import Counter, Gauge

from tocsin.errors import TocsinError
from tocsin.ids import now_ms
from tocsin.outbound import LocalService, Refused, Rules, check_url, client
from tocsin.outbound.signing import BadSecret, headers, new_secret, normalize_secret
from tocsin.scheduler import NewTimer, Timer
from tocsin.scheduler.runner import RetryLater
from tocsin.store.hooks import Many
from tocsin.store.outbox import Happening
from tocsin.store.timers import timers as timers_table
from tocsin.webhooks.settings import EventWebhookNodeSettings
from tocsin.webhooks.store import Failure, SqlEventWebhookStore, Subscription
from tocsin.webhooks.tables import subscriptions as subscriptions_table

if TYPE_CHECKING:
    from tocsin.kernel import Kernel

log = logging.getLogger("tocsin.webhooks")

EVENT_TYPES = (
    "notification.read", "notification.unread", "notification.dismissed",
    "notification.acked", "incident.escalated", "incident.exhausted",
    "push.gone", "email.unsubscribed",
)
"""What a subscription may ask for: the observation kinds forwarded."""
TIMER_KIND = "event-webhook"
MAX_SUBSCRIPTIONS = 100
VIEW_REFRESH_S = 0.5
"""How often a node reads which kinds subscriptions want (its :meth:`wants` view); a
node's own PUT/DELETE refresh it at once."""
VIEW_WAIT_S = 2 * VIEW_REFRESH_S + 0.2
"""A PUT that makes some kind wanted for the first time answers only after this: by
then every node's view has it, so a change committed after the reply is written with
its event wherever it happens (one refresh period, one read in flight, a margin)."""
OUTBOX_INSERT = (
    f"INSERT INTO {timers_table.name} (id, kind, key, payload, due_at, lease_until, "
    "attempts, created_at) "
    "SELECT CAST(? AS TEXT) || name, CAST(? AS TEXT), name, CAST(? AS TEXT), "
    "CAST(? AS BIGINT), 0, 0, CAST(? AS BIGINT) "
    f"FROM {subscriptions_table.name} WHERE NOT paused AND events LIKE ? "
    "ON CONFLICT (id) DO NOTHING")
"""One event's delivery timers: a row per unpaused subscription whose ``events``
(a JSON list) holds the kind (the ``LIKE`` matches ``"<kind>"`` with its quotes;
kinds have no ``%`` or ``_``). An event id made from a ``key`` is the same when a
retried writer reports it again: ``ON CONFLICT`` keeps the first."""
REQUEST_TIMEOUT_S = 10.0
MAX_EVENT_BYTES = 16 * 1024
"""An event's body at most; an observation's ``detail`` beyond it is left out."""
FIRST_RETRY_MS = 1000
MAX_RETRY_MS = 3600_000
PAUSED_RECHECK_MS = 60_000
"""How often a held delivery of a paused subscription looks whether it was resumed."""
FAILURES_LISTED = 50


class EventWebhooks:
    def __init__(self, settings: EventWebhookNodeSettings) -> None:
        self.settings = settings
        self.rules = Rules(allow_loopback=settings.webhook_allow_private,
                           allow_private=settings.webhook_allow_private)
        self._kernel: Kernel | None = None
        self._store: SqlEventWebhookStore | None = None
        self._client: httpx.AsyncClient | None = None
        self._wanted: frozenset[str] = frozenset()
        self._viewer: asyncio.Task[None] | None = None
        self._outcomes: Counter | None = None

    def accept_local(self, port: int, path: str) -> None:
        """Also let subscriptions reach one service on this machine: a loopback address,
        ``port``, under ``path`` (the demo's own receiver; call before :meth:`start`),
        without allowing every local address (``--webhook-allow-private``)."""
        self.rules = Rules(allow_loopback=self.rules.allow_loopback,
                           local=(*self.rules.local, LocalService(port, path)),
                           allow_private=self.rules.allow_private)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, kernel: Kernel) -> None:
        """Register the timer kind and metrics and become the database's outbox;
        without a SQL store (no durable timers) it does nothing."""
        self._kernel = kernel
        registry = kernel.metrics.registry
        self._outcomes = Counter(
            "tocsin_event_webhooks_total", "Event webhook deliveries by outcome (sent; "
            "retry: an attempt failed, retried; given_up: failed for the give-up time, "
            "recorded; dropped: no subscription any more; paused: held, its "
            "subscription paused)",
            ["outcome"], registry=registry)
        # always 0 since events are written with their change (the outbox); kept so
        # dashboards and alerts reading it keep working
        queued = Gauge("tocsin_event_webhooks_queued",
                       "Events observed, not yet stored as deliveries (always 0: they "
                       "are stored with the change)", registry=registry)
        queued.set(0)
        if not kernel.has_database:
            return
        self._store = SqlEventWebhookStore(kernel.db)
        self._client = client(self.rules, REQUEST_TIMEOUT_S,
                              httpx.Limits(max_connections=50, max_keepalive_connections=10))
        kernel.timers.on(TIMER_KIND, self._deliver)
        await self._refresh_view()
        kernel.db.outbox = self
        self._viewer = asyncio.create_task(self._view_loop(), name="tocsin-event-webhooks")

    async def stop(self) -> None:
        if self._viewer is not None:
            self._viewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._viewer
            self._viewer = None
        if self._client is not None:
            await self._client.aclose()

    @property
    def store(self) -> SqlEventWebhookStore:
        if self._store is None:
            raise TocsinError("not_found", "Event webhooks need a SQL store.")
        return self._store

    def _count(self, outcome: str, n: int = 1) -> None:
        if self._outcomes is not None and n:
            self._outcomes.labels(outcome).inc(n)

    # -- the API -------------------------------------------------------------------------
    async def put(self, name: str, raw: object) -> tuple[dict[str, Any], bool]:
        """Create or replace (and so resume) subscription ``name``; its JSON (with the
        secret when it was generated) and whether it is new."""
        url, events, secret = self._parse(raw)
        generated = secret is None
        secret = secret or new_secret()
        known = await self.store.get(name)
        if known is None and await self.store.count() >= MAX_SUBSCRIPTIONS:
            raise TocsinError("invalid_field", f"At most {MAX_SUBSCRIPTIONS} event "
                              "webhooks; delete one first.", "name")
        created = await self.store.put(name, url, events, secret, self._now())
        before = self._wanted
        await self._refresh_view()
        if not self._wanted <= before:
            # a kind nobody wanted: other nodes and workers skip its statement until
            # their view has it; answer once they all have (VIEW_WAIT_S)
            await asyncio.sleep(VIEW_WAIT_S)
        sub = await self.store.get(name)
        assert sub is not None
        out = describe(sub)
        if generated:
            out["secret"] = secret
        return out, created

    async def get(self, name: str) -> dict[str, Any]:
        sub = await self.store.get(name)
        if sub is None:
            raise TocsinError("not_found", f"No event webhook named {name!r}.")
        return describe(sub)

    async def all(self) -> list[dict[str, Any]]:
        return [describe(s) for s in await self.store.all()]

    async def delete(self, name: str) -> None:
        if not await self.store.delete(name):
            raise TocsinError("not_found", f"No event webhook named {name!r}.")
        await self._refresh_view()
        if self._kernel is not None:  # its pending deliveries go with it
            await self._kernel.timers.timers.cancel(TIMER_KIND, name)

    async def failures(self, name: str) -> list[dict[str, Any]]:
        if await self.store.get(name) is None:
            raise TocsinError("not_found", f"No event webhook named {name!r}.")
        return [{"id": f.event_id, "type": f.type, "at": f.at, "attempts": f.attempts,
                 "reason": f.reason} for f in await self.store.failures(name, FAILURES_LISTED)]

    def _parse(self, raw: object) -> tuple[str, list[str], str | None]:
        if not isinstance(raw, dict):
            raise TocsinError("invalid_field", "The body is a JSON object "
                              "{url, events, secret}.", "body")
        extra = set(raw) - {"url", "events", "secret"}
        if extra:
            raise TocsinError("invalid_field", f"Unknown field {sorted(extra)[0]!r}.",
                              sorted(extra)[0])
        url = raw.get("url")
        if not isinstance(url, str) or not url or len(url) > 2000:
            raise TocsinError("invalid_field", "url: an https:// URL of at most 2000 "
                              "characters.", "url")
        try:
            check_url(url, self.rules)
        except Refused as exc:
            raise TocsinError("invalid_field", f"url: {exc}", "url") from None
        events = raw.get("events")
        if not isinstance(events, list) or not events \
                or not all(isinstance(e, str) for e in events):
            raise TocsinError("invalid_field", "events: a non-empty list of event types "
                              f"({', '.join(EVENT_TYPES)}).", "events")
        unknown = [e for e in events if e not in EVENT_TYPES]
        if unknown:
            raise TocsinError("invalid_field", f"events: unknown event type {unknown[0]!r} "
                              f"(known: {', '.join(EVENT_TYPES)}).", "events")
        secret = raw.get("secret")
        if secret is not None:
            if not isinstance(secret, str):
                raise TocsinError("invalid_field", "secret: whsec_<base64>.", "secret")
            try:
                secret = normalize_secret(secret)
            except BadSecret as exc:
                raise TocsinError("invalid_field", f"secret: {exc}.", "secret") from None
        return url, list(dict.fromkeys(events)), secret

    # -- the outbox: events written with the change ---------------------------------------
    def wants(self, kind: str) -> bool:
        """Whether a change of ``kind`` writes a statement: this node's view of the
        kinds some unpaused subscription wants (``Outbox.wants``, no I/O)."""
        return kind in self._wanted

    def statements(self, items: Sequence[Happening]) -> list[Many]:
        """``Outbox.statements``: one delivery timer per (event, subscription wanting
        it), inserted by one ``INSERT … SELECT`` over the subscriptions table inside
        the transaction of the change, so every node and worker writes against the
        current subscriptions, whatever this node's view says."""
        now = self._now()
        rows: list[tuple[Any, ...]] = []
        for h in items:
            event = event_of(h, now)
            payload = json.dumps({"event": event, "first": now}, separators=(",", ":"))
            rows.append((f"evw:{event['id']}:", TIMER_KIND, payload, now, now,
                         f'%"{h.kind}"%'))
        return [(OUTBOX_INSERT, rows)]

    def committed(self) -> None:
        """``Outbox.committed``: deliveries were just committed, due now: wake the
        scheduler rather than leave them to its next poll (up to a second)."""
        if self._kernel is not None:
            self._kernel.timers.kick()

    async def _refresh_view(self) -> None:
        """Read which kinds unpaused subscriptions want; on a failure assume every
        kind (a statement too many is correct, a skipped one would lose events)."""
        try:
            subs = await self.store.all()
        except Exception as exc:
            log.warning("event webhooks: could not read the subscriptions: %r", exc)
            self._wanted = frozenset(EVENT_TYPES)
            return
        self._wanted = frozenset(k for s in subs if not s.paused for k in s.events)

    async def _view_loop(self) -> None:
        while True:
            await asyncio.sleep(VIEW_REFRESH_S)
            await self._refresh_view()

    # -- one delivery ----------------------------------------------------------------------
    async def _deliver(self, timer: Timer) -> list[NewTimer]:
        event: dict[str, Any] = timer.payload["event"]
        first, now = int(timer.payload["first"]), self._now()
        deadline = first + int(self.settings.event_webhook_give_up_s * 1000)
        sub = await self.store.get(timer.key)
        if sub is None:
            self._count("dropped")
            return []
        if sub.paused:
            if now >= deadline:
                return await self._give_up(timer, sub, event, "its subscription is paused")
            self._count("paused")
            raise RetryLater(min(PAUSED_RECHECK_MS, deadline - now), "subscription paused")
        reason, retry_after = await self._post(sub, event)
        if reason is None:
            await self.store.succeeded(sub.name)
            self._count("sent")
            return []
        paused = await self.store.attempt_failed(sub.name, reason,
                                                 self.settings.event_webhook_pause_after)
        if paused:
            log.warning("event webhook %r paused after %d failed attempts in a row: %s",
                        sub.name, self.settings.event_webhook_pause_after, reason)
        now = self._now()
        if now >= deadline:
            return await self._give_up(timer, sub, event, reason)
        self._count("retry")
        delay = retry_after if retry_after is not None else backoff_ms(timer.attempts)
        raise RetryLater(max(0, min(delay, deadline - now)), f"{sub.name}: {reason}")

    async def _post(self, sub: Subscription, event: dict[str, Any]) -> tuple[str | None,
                                                                             int | None]:
        """Send ``event``: ``(None, None)`` when the receiver took it, else why not and
        the ``Retry-After`` it asked for (ms)."""
        assert self._client is not None
        body = json.dumps({"type": event["type"], "timestamp": event["timestamp"],
                           "data": event["data"]}, separators=(",", ":")).encode()
        # the request's own time (wall clock, not the node's test clock): receivers
        # reject a timestamp far from theirs (replay protection)
        signed = headers(sub.secret, event["id"], int(time.time()), body)
        signed["content-type"] = "application/json"
        try:
            reply = await self._client.post(sub.url, content=body, headers=signed)
        except Refused as exc:
            return f"refused: {exc}", None
        except httpx.TimeoutException:
            return "timed out", None
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:500], None
        if 200 <= reply.status_code < 300:
            return None, None
        return f"HTTP {reply.status_code}", retry_after_ms(reply.headers.get("retry-after"),
                                                           self._now())

    async def _give_up(self, timer: Timer, sub: Subscription, event: dict[str, Any],
                       reason: str) -> list[NewTimer]:
        log.warning("event webhook %r: event %s (%s) given up after %d attempts: %s",
                    sub.name, event["id"], event["type"], timer.attempts, reason)
        await self.store.record_failure(timer.id, sub.name, Failure(
            event["id"], event["type"], self._now(), timer.attempts, reason))
        self._count("given_up")
        return []

    def _now(self) -> int:
        return int(self._kernel.clock()) if self._kernel is not None else now_ms()


def event_of(o: Happening, at: int) -> dict[str, Any]:
    """The event as sent (Standard Webhooks: ``type``, ``timestamp``, ``data``) with its
    id, fixed once: every retry sends the same body. The id is random, or made from
    ``o.key`` where the happening has one (the same on a retried write)."""
    data: dict[str, Any] = {"user": o.user, "notification": o.notification}
    if o.by is not None:
        data["by"] = o.by
    detail = dict(o.detail)
    if detail and len(json.dumps(detail, default=str)) <= MAX_EVENT_BYTES:
        for key, value in detail.items():
            data.setdefault(key, value)
    if o.key is None:
        msg_id = "msg_" + f"{at:012x}{os.urandom(8).hex()}"
    else:
        msg_id = "msg_" + hashlib.sha256(o.key.encode()).hexdigest()[:28]
    data = {"id": msg_id, **data}
    stamp = datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds")
    return {"id": msg_id, "type": o.kind, "timestamp": stamp.replace("+00:00", "Z"),
            "data": json.loads(json.dumps(data, default=str))}


def describe(sub: Subscription) -> dict[str, Any]:
    """A subscription's JSON (never its secret)."""
    return {"name": sub.name, "url": sub.url, "events": list(sub.events),
            "paused": sub.paused, "consecutiveFailures": sub.failures,
            "lastError": sub.last_error, "createdAt": sub.created_at,
            "updatedAt": sub.updated_at}


def backoff_ms(attempts: int) -> int:
    """1 s, 4 s, 16 s, ... up to an hour: the wait after failed attempt ``attempts``."""
    return int(min(MAX_RETRY_MS, FIRST_RETRY_MS * 4 ** max(0, min(attempts - 1, 10))))


def retry_after_ms(value: str | None, now: int) -> int | None:
    """``Retry-After`` (seconds, or an HTTP date) as a delay in ms; ``None`` if absent
    or unreadable. Capped at an hour."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(MAX_RETRY_MS, int(value) * 1000)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, min(MAX_RETRY_MS, int(when.timestamp() * 1000) - now))
