"""``Kernel``: what a node is before any feature: the store, the hub (local
connections and the broker), the durable timers, the clock and the metrics.

Every state change is stored first (one transaction), then fanned out; a caller
that gets a result back knows the change is durable. Features register their
timer kinds between :meth:`Kernel.open` and :meth:`Kernel.start_timers`; the
scheduler claims nothing before the latter, so a timer already due at start is
handled on its first claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Protocol

from tocsin.errors import TocsinError
from tocsin.events import StreamEvent
from tocsin.ids import Position, now_ms
from tocsin.kernel.observe import Observation, Observations
from tocsin.metrics import Metrics
from tocsin.scheduler import Clock, Scheduler
from tocsin.scheduler.runner import GiveUpHook, Handler
from tocsin.store.base import (
    Change,
    NewNotification,
    NewTopicEvent,
    PublishItem,
    PublishResult,
    Store,
)
from tocsin.store.db import Database
from tocsin.streams.hub import Hub

log = logging.getLogger("tocsin")

PRUNE_EVERY_S = 60.0
_EXIT_AFTER_READ = os.environ.get("TOCSIN_TEST_EXIT_AFTER_READ") == "1"
"""Tests only (tests/webhooks, the outbox's kill test): the process ends (``os._exit``,
nothing runs after it) right after a read's transaction commits, before anything
else of the read (its fan-out, its observation) can run."""


class Timers(Protocol):
    """The durable timers as a feature sees them: register a kind, wake the loop."""

    def on(self, kind: str, handler: Handler, give_up: GiveUpHook | None = None) -> None: ...

    def kick(self) -> None: ...


class Kernel:
    """The node core. Built by the assembly point with its parts injected."""

    def __init__(self, store: Store, hub: Hub, metrics: Metrics, clock: Clock = now_ms, *,
                 retention_s: float = 7 * 86400.0, timer_poll_s: float = 1.0) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics
        self.clock: Clock = clock
        self.observations = Observations()
        """What happened to notifications, for whoever subscribes (the trail, event
        webhooks): kernel/observe.py."""
        self.retention_s = retention_s
        self._db: Database | None = _database_of(store)
        self._scheduler: Scheduler | None = None
        if self._db is not None:
            from tocsin.store.timers import SqlTimerStore

            self._scheduler = Scheduler(SqlTimerStore(self._db), clock, poll_s=timer_poll_s)
            given_up = metrics.timers_given_up
            self._scheduler.on_given_up = lambda kind: given_up.labels(kind).inc()
        self._pruner: asyncio.Task[None] | None = None

    # -- the parts a feature may use -------------------------------------------------
    @property
    def db(self) -> Database:
        """The one public way into the database (``store/db.py``)."""
        if self._db is None:
            raise TocsinError("not_found", "This needs a SQL store.")
        return self._db

    @property
    def has_database(self) -> bool:
        """Whether the store is a SQL store: the features that keep their own tables
        (and the durable timers) need one; without it they do nothing at start."""
        return self._db is not None

    @property
    def timers(self) -> Scheduler:
        """The node's one scheduler: every feature and channel registers its timer
        kinds here, between :meth:`open` and :meth:`start_timers`."""
        if self._scheduler is None:
            raise TocsinError("not_found", "Timers need a SQL store.")
        return self._scheduler

    # -- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        """Open the store and the hub; features register their timer kinds next."""
        await self.store.open()
        await self.hub.start()

    def start_timers(self) -> None:
        """Start claiming due timers and pruning; no timer kind can be added after this."""
        if self._scheduler is not None:
            self._scheduler.start()
        self._pruner = asyncio.create_task(self._prune_loop(), name="tocsin-prune")

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        if self._scheduler is not None:
            await self._scheduler.stop()

    async def close(self) -> None:
        await self.hub.stop()
        await self.store.close()

    # -- operations: stored, then fanned out ---------------------------------------------
    async def publish(self, publisher: str, recipients: list[str], note: NewNotification,
                      idempotency_key: str | None = None, *,
                      always_inbox: bool = False) -> PublishResult:
        started = time.perf_counter()
        result = await self.store.publish(publisher, recipients, note, idempotency_key,
                                          always_inbox=always_inbox)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self.metrics.events.labels("notification").inc(len(result.events))
        if result.skipped and not result.replayed and self.observations.active:
            self._report_skipped(result.skipped)
        await self.hub.fan_out(result.events)
        if result.reached and self._scheduler is not None:
            self._scheduler.kick()  # channel timers due now: don't wait for the next poll
        return result

    async def publish_many(self, publisher: str, items: list[PublishItem]
                           ) -> list[PublishResult | Exception]:
        """:meth:`publish` for many notifications as one unit (``Store.publish_many``):
        one outcome per item, in order; what was stored is fanned out together (one
        broker message per 500 events)."""
        started = time.perf_counter()
        outcomes = await self.store.publish_many(publisher, items)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        events = [ev for o in outcomes if isinstance(o, PublishResult) for ev in o.events]
        self.metrics.events.labels("notification").inc(len(events))
        if self.observations.active:
            for o in outcomes:
                if isinstance(o, PublishResult) and o.skipped and not o.replayed:
                    self._report_skipped(o.skipped)
        await self.hub.fan_out(events)
        if self._scheduler is not None and any(
                isinstance(o, PublishResult) and o.reached for o in outcomes):
            self._scheduler.kick()
        return outcomes

    def _report_skipped(self, skipped: dict[str, str]) -> None:
        """Recipients the publish stored nothing for: the trail's only record of them
        (a delivered or silent copy's decision is read from its row instead)."""
        at = self.clock()
        self.observations.report([
            Observation("decision", at, user, None, None,
                        {"decision": "skipped", "reason": reason})
            for user, reason in skipped.items()])

    async def fan_out(self, events: list[StreamEvent]) -> None:
        await self.hub.fan_out(events)

    async def add_topic_event(self, topic: str, event: NewTopicEvent) -> StreamEvent:
        ev = await self.store.add_topic_event(topic, event)
        self.metrics.events.labels("activity").inc()
        await self.hub.fan_out([ev])
        return ev

    async def set_read(self, user: str, ids: list[str], read: bool) -> Change | None:
        change = await self.store.set_read(user, ids, read)
        if _EXIT_AFTER_READ and read and change is not None and change.ids:
            os._exit(70)
        if change is not None:
            await self.hub.fan_out(change.events)
            self._observe_change("notification.read" if read else "notification.unread",
                                 user, change)
        return change

    async def read_all(self, user: str, type: str | None, before: Position | None) -> Change:
        change = await self.store.read_all(user, type, before)
        await self.hub.fan_out(change.events)
        self._observe_change("notification.read", user, change)
        return change

    async def dismiss(self, user: str, id: str) -> Change | None:
        change = await self.store.dismiss(user, id)
        if change is not None:
            await self.hub.fan_out(change.events)
            self._observe_change("notification.dismissed", user, change)
        return change

    def _observe_change(self, kind: str, user: str, change: Change) -> None:
        """Report a read-state change by its user: one observation per notification it
        changed (``change.ids``: only those whose state actually changed)."""
        if not change.ids or not self.observations.active:
            return
        at = self.clock()
        self.observations.report([Observation(kind, at, user, nid, user)
                                  for nid in change.ids])

    async def _prune_loop(self) -> None:
        retention_ms = int(self.retention_s * 1000)
        interval = min(PRUNE_EVERY_S, max(1.0, self.retention_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                n = await self.store.prune(now_ms(), retention_ms)
                if n:
                    log.info("pruned %d events older than the retention", n)
            except Exception as exc:  # the database may be away; try next round
                log.warning("prune failed: %r", exc)


def _database_of(store: Store) -> Database | None:
    from tocsin.store.sql import SqlStore

    return store.db if isinstance(store, SqlStore) else None
