"""The service object: store + broker + hub, and the operations that change state.

Every state change is stored first (one transaction), then fanned out; a caller
that gets a result back knows the change is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from tocsin.attention.service import Attention
from tocsin.broker import broker_from_url
from tocsin.config import Settings
from tocsin.escalation import Escalation
from tocsin.escalation.service import file_clock
from tocsin.events import StreamEvent
from tocsin.grouping import Grouping
from tocsin.ids import Position, now_ms
from tocsin.metrics import Metrics
from tocsin.reach.email.service import EmailChannel
from tocsin.reach.push.service import Push
from tocsin.store import StoreOptions, store_from_url
from tocsin.store.base import Change, NewNotification, NewTopicEvent, PublishResult, Store
from tocsin.streams.hub import Hub

log = logging.getLogger("tocsin")

PRUNE_EVERY_S = 60.0


class Tocsin:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        # the node's one clock (a file under --test-clock-file): timers, attention and
        # grouping are judged by it, so it is decided here and given to each
        clock = file_clock(settings.test_clock_file) if settings.test_clock_file else now_ms
        self.store: Store = store or store_from_url(settings.database_url, StoreOptions(
            clock=clock, group_window_ms=int(settings.group_window_s * 1000)))
        self.hub = Hub(
            self.store,
            broker_from_url(settings.broker_url),
            heartbeat_s=settings.heartbeat_s,
            degraded_poll_s=settings.degraded_poll_s,
            presence_interval_s=settings.presence_interval_s,
        )
        self.metrics = Metrics(self.hub)
        self.escalation = Escalation(self, clock, presence=self.hub.presence,
                                     poll_s=settings.timer_poll_s)
        self.grouping = Grouping(self)  # snooze, update/retract by key (docs/grouping.md)
        self.attention = Attention(self, self.escalation.clock)  # docs/attention.md
        self.push = Push(self)  # Web Push to closed tabs (docs/push.md)
        self.email = EmailChannel(self)  # email to closed tabs (docs/email.md)
        self._pruner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.open()
        await self.hub.start()
        await self.escalation.start()
        await self.attention.start()
        await self.push.start()
        await self.email.start()
        await self.grouping.start()
        # Last: every feature above has registered its timer kinds (push awaits a
        # database read first), so a timer already due is handled on its first claim.
        self.escalation.start_timers()
        self._pruner = asyncio.create_task(self._prune_loop(), name="tocsin-prune")

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
        await self.escalation.stop()
        await self.push.stop()
        await self.hub.stop()
        await self.store.close()

    async def publish(self, publisher: str, recipients: list[str], note: NewNotification,
                      idempotency_key: str | None = None, *,
                      always_inbox: bool = False) -> PublishResult:
        started = time.perf_counter()
        result = await self.store.publish(publisher, recipients, note, idempotency_key,
                                          always_inbox=always_inbox)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self.metrics.events.labels("notification").inc(len(result.events))
        await self.hub.fan_out(result.events)
        if result.reached:  # push/email timers due now: don't wait for the next poll
            self.escalation.scheduler.kick()
        return result

    async def add_topic_event(self, topic: str, event: NewTopicEvent) -> StreamEvent:
        ev = await self.store.add_topic_event(topic, event)
        self.metrics.events.labels("activity").inc()
        await self.hub.fan_out([ev])
        return ev

    async def set_read(self, user: str, ids: list[str], read: bool) -> Change | None:
        change = await self.store.set_read(user, ids, read)
        if change is not None:
            await self.hub.fan_out(change.events)
        return change

    async def read_all(self, user: str, type: str | None, before: Position | None) -> Change:
        change = await self.store.read_all(user, type, before)
        await self.hub.fan_out(change.events)
        return change

    async def dismiss(self, user: str, id: str) -> Change | None:
        change = await self.store.dismiss(user, id)
        if change is not None:
            await self.hub.fan_out(change.events)
        return change

    async def _prune_loop(self) -> None:
        retention_ms = int(self.settings.retention_s * 1000)
        interval = min(PRUNE_EVERY_S, max(1.0, self.settings.retention_s / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                n = await self.store.prune(now_ms(), retention_ms)
                if n:
                    log.info("pruned %d events older than the retention", n)
            except Exception as exc:  # the database may be away; try next round
                log.warning("prune failed: %r", exc)
