"""The assembly point: the one module that knows every feature. It builds the node's
parts (store, hub, metrics), the :class:`~tocsin.kernel.Kernel` that owns them, then
each feature, giving it the kernel; and it starts them in the one safe order.

Every state change is stored first (one transaction), then fanned out (the kernel's
operations); a caller that gets a result back knows the change is durable. The API
routes, above the features, reach them through this object.
"""

from __future__ import annotations

from typing import cast

from tocsin.attention.hook import AttentionHook
from tocsin.attention.service import Attention
from tocsin.broker import broker_from_url
from tocsin.channels.email.service import EmailChannel
from tocsin.channels.push.service import PushChannel
from tocsin.channels.registry import CHANNELS
from tocsin.config import Settings
from tocsin.escalation import Escalation
from tocsin.events import StreamEvent
from tocsin.ids import Position, now_ms
from tocsin.kernel import Kernel, file_clock
from tocsin.kernel.channel import Channel, StepPoster
from tocsin.lifecycle import Lifecycle
from tocsin.metrics import Metrics
from tocsin.store import StoreOptions, store_from_url
from tocsin.store.base import (
    Change,
    NewNotification,
    NewTopicEvent,
    PublishItem,
    PublishResult,
    Store,
)
from tocsin.store.riders import RidingHook
from tocsin.streams.hub import Hub
from tocsin.trail import TrailRecorder, TrailView
from tocsin.webhooks.service import EventWebhooks


class Tocsin:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        # the node's one clock (a file under --test-clock-file): timers, attention and
        # grouping are judged by it, so it is decided here and given to the kernel
        clock = file_clock(settings.test_clock_file) if settings.test_clock_file else now_ms
        # the registered channels (push, email, ...), built first: the store's publish
        # hook (attention's) decides per recipient which of them carry a notification
        self.channels: list[Channel] = [spec.build(settings) for spec in CHANNELS]
        # ... wrapped so the trail's first writes ride along with the group commit
        # (store/riders.py) instead of taking the writer lock for their own transaction
        hook = RidingHook(AttentionHook(self.channels))
        self.store: Store = store or store_from_url(settings.database_url, StoreOptions(
            clock=clock, group_window_ms=int(settings.group_window_s * 1000),
            pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow,
            hook=hook))
        self.hub = Hub(
            self.store,
            broker_from_url(settings.broker_url),
            heartbeat_s=settings.heartbeat_s,
            degraded_poll_s=settings.degraded_poll_s,
            presence_interval_s=settings.presence_interval_s,
        )
        self.metrics = Metrics(self.hub)
        self.kernel = Kernel(self.store, self.hub, self.metrics, clock,
                             retention_s=settings.retention_s,
                             timer_poll_s=settings.timer_poll_s)
        # a channel that posts to named targets offers it to escalation's steps
        self.escalation = Escalation(self.kernel, presence=self.hub.presence, posters={
            c.name: c.step_timer for c in self.channels if isinstance(c, StepPoster)})
        self.lifecycle = Lifecycle(self.kernel)  # snooze, update/retract (docs/grouping.md)
        self.attention = Attention(self.kernel, self.channels)  # docs/attention.md
        self.event_webhooks = EventWebhooks(settings)  # docs/webhooks.md
        self.trail_recorder = TrailRecorder(  # docs/trail.md
            self.kernel, rider=hook if store is None else None)
        self.trail = TrailView(self.kernel)
        # the two channels by name, for the demo and the tools (docs/push.md, email.md)
        self.push = cast(PushChannel, self.channel("push"))
        self.email = cast(EmailChannel, self.channel("email"))

    def channel(self, name: str) -> Channel:
        return next(c for c in self.channels if c.name == name)

    async def start(self) -> None:
        await self.kernel.open()
        self.trail_recorder.start()  # first: it subscribes before anything reports
        await self.escalation.start()
        await self.attention.start()
        for channel in self.channels:  # each registers its timer kinds and metrics
            await channel.start(self.kernel, self.attention)
        await self.lifecycle.start()
        await self.event_webhooks.start(self.kernel)
        # Last: every feature above has registered its timer kinds (push awaits a
        # database read first), so a timer already due is handled on its first claim.
        self.kernel.start_timers()

    async def stop(self) -> None:
        await self.kernel.stop()
        for channel in self.channels:
            await channel.stop()
        await self.event_webhooks.stop()
        await self.trail_recorder.stop()  # writes what is still queued
        await self.kernel.close()

    # -- the kernel's operations, for the routes ---------------------------------------
    async def publish(self, publisher: str, recipients: list[str], note: NewNotification,
                      idempotency_key: str | None = None, *,
                      always_inbox: bool = False) -> PublishResult:
        return await self.kernel.publish(publisher, recipients, note, idempotency_key,
                                         always_inbox=always_inbox)

    async def publish_many(self, publisher: str, items: list[PublishItem]
                           ) -> list[PublishResult | Exception]:
        return await self.kernel.publish_many(publisher, items)

    async def add_topic_event(self, topic: str, event: NewTopicEvent) -> StreamEvent:
        return await self.kernel.add_topic_event(topic, event)

    async def set_read(self, user: str, ids: list[str], read: bool) -> Change | None:
        return await self.kernel.set_read(user, ids, read)

    async def read_all(self, user: str, type: str | None, before: Position | None) -> Change:
        return await self.kernel.read_all(user, type, before)

    async def dismiss(self, user: str, id: str) -> Change | None:
        return await self.kernel.dismiss(user, id)
