"""The assembly point: the one module that knows every feature. It builds the node's
parts (store, hub, metrics), the :class:`~tocsin.kernel.Kernel` that owns them, then
each feature, giving it the kernel; and it starts them in the one safe order.

Every state change is stored first (one transaction), then fanned out (the kernel's
operations); a caller that gets a result back knows the change is durable. The API
routes, above the features, reach them through this object.
"""

from __future__ import annotations

from tocsin.attention.service import Attention
from tocsin.broker import broker_from_url
from tocsin.config import Settings
from tocsin.escalation import Escalation
from tocsin.events import StreamEvent
from tocsin.ids import Position, now_ms
from tocsin.kernel import Kernel, file_clock
from tocsin.lifecycle import Lifecycle
from tocsin.metrics import Metrics
from tocsin.reach.email.service import EmailChannel
from tocsin.reach.push.service import Push
from tocsin.store import StoreOptions, store_from_url
from tocsin.store.base import Change, NewNotification, NewTopicEvent, PublishResult, Store
from tocsin.streams.hub import Hub


class Tocsin:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        # the node's one clock (a file under --test-clock-file): timers, attention and
        # grouping are judged by it, so it is decided here and given to the kernel
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
        self.kernel = Kernel(self.store, self.hub, self.metrics, clock,
                             retention_s=settings.retention_s,
                             timer_poll_s=settings.timer_poll_s)
        self.escalation = Escalation(self.kernel, presence=self.hub.presence)
        self.lifecycle = Lifecycle(self.kernel)  # snooze, update/retract (docs/grouping.md)
        self.attention = Attention(self.kernel)  # docs/attention.md
        # the channels still take this object (what they read of attention and the
        # timers); they move to the kernel with the Channel seam
        self.push = Push(self)  # Web Push to closed tabs (docs/push.md)
        self.email = EmailChannel(self)  # email to closed tabs (docs/email.md)

    async def start(self) -> None:
        await self.kernel.open()
        await self.escalation.start()
        await self.attention.start()
        await self.push.start()
        await self.email.start()
        await self.lifecycle.start()
        # Last: every feature above has registered its timer kinds (push awaits a
        # database read first), so a timer already due is handled on its first claim.
        self.kernel.start_timers()

    async def stop(self) -> None:
        await self.kernel.stop()
        await self.push.stop()
        await self.kernel.close()

    # -- the kernel's operations, for the routes ---------------------------------------
    async def publish(self, publisher: str, recipients: list[str], note: NewNotification,
                      idempotency_key: str | None = None, *,
                      always_inbox: bool = False) -> PublishResult:
        return await self.kernel.publish(publisher, recipients, note, idempotency_key,
                                         always_inbox=always_inbox)

    async def add_topic_event(self, topic: str, event: NewTopicEvent) -> StreamEvent:
        return await self.kernel.add_topic_event(topic, event)

    async def set_read(self, user: str, ids: list[str], read: bool) -> Change | None:
        return await self.kernel.set_read(user, ids, read)

    async def read_all(self, user: str, type: str | None, before: Position | None) -> Change:
        return await self.kernel.read_all(user, type, before)

    async def dismiss(self, user: str, id: str) -> Change | None:
        return await self.kernel.dismiss(user, id)
