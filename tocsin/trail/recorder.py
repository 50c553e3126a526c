"""Records the trail off the hot path.

Two feeds, both only queued where they happen:

- the kernel's observations (``kernel/observe.py``): the channel seam's outcomes,
  escalation steps, read-state changes, skipped recipients. The observer appends to a
  list and returns.
- the hub's writes (``Hub.live_writes``): each notification event a connection took
  for live writing (appended by ``Hub.deliver``) or queued from a store read
  (``streams/follow.py``), no parsing there. The flush keeps the first per
  (notification, recipient), ``stream.live`` or ``stream.caught_up``, and drops the rest.

A background task swaps both lists every :data:`FLUSH_EVERY_S` and writes what they
held with one insert; it also prunes rows older than the retention. The queue is
bounded (:data:`MAX_PENDING`): beyond it, steps are dropped and counted, never
blocking delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from tocsin.kernel.observe import Observation
from tocsin.store import trail as rows
from tocsin.store.trail import Step

if TYPE_CHECKING:
    from tocsin.kernel.kernel import Kernel

log = logging.getLogger("tocsin")

FLUSH_EVERY_S = 0.5
PRUNE_EVERY_S = 60.0
MAX_PENDING = 200_000
"""Steps held between flushes at most (a database away for a while): the oldest
surplus is dropped rather than growing without bound."""
SEEN_LIVE = 100_000
"""(notification, user) pairs remembered as already written live, so a second tab or
a reconnect does not record a second "first live write"."""
_ID_PREFIX = '{"id":"'


class TrailRecorder:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._observed: list[Observation] = []
        self._live: list[tuple[str, str, str, int, bool]] = []
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self._last_prune = 0.0

    def start(self) -> None:
        if not self.kernel.has_database:
            return
        self.kernel.observations.subscribe(self._observe)
        self.kernel.hub.live_writes = self._live
        self._task = asyncio.create_task(self._loop(), name="tocsin-trail")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self.kernel.hub.live_writes = None
        with contextlib.suppress(Exception):  # the database may be gone at shutdown
            await self.flush()

    def _observe(self, items: Sequence[Observation]) -> None:
        if len(self._observed) + len(items) > MAX_PENDING:
            self.dropped += len(items)
            return
        self._observed.extend(items)

    def _take(self) -> list[Step]:
        observed, self._observed = self._observed, []
        live = self._live
        if len(live) > MAX_PENDING:
            self.dropped += len(live) - MAX_PENDING
            del live[MAX_PENDING:]
        taken = live[:]
        del live[:]  # the hub holds this very list: empty it in place
        steps = [Step(o.notification, o.user or "", o.at, o.kind, o.by, dict(o.detail))
                 for o in observed if o.user]
        seen = self._seen
        for stream, data, transport, at, caught_up in taken:
            if not stream.startswith("u:"):
                continue
            nid = _notification_id(data)
            if nid is None:
                continue
            key = (nid, stream[2:])
            if key in seen:
                continue
            seen[key] = None
            if len(seen) > SEEN_LIVE:
                seen.popitem(last=False)
            steps.append(Step(nid, key[1], at, "stream.caught_up" if caught_up else "stream.live",
                              None, {"transport": transport}))
        return steps

    async def flush(self) -> int:
        steps = self._take()
        if steps:
            await rows.append(self.kernel.db, steps)
        return len(steps)

    async def prune(self, now: int) -> int:
        return await rows.prune(self.kernel.db, now - int(self.kernel.retention_s * 1000))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        prune_every = min(PRUNE_EVERY_S, max(1.0, self.kernel.retention_s / 4))
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            steps = self._take()
            try:
                if steps:
                    await rows.append(self.kernel.db, steps)
                if loop.time() - self._last_prune >= prune_every:
                    self._last_prune = loop.time()
                    await self.prune(self.kernel.clock())
            except Exception as exc:  # the database may be away: keep them for next round
                log.warning("trail: writing %d steps failed: %r", len(steps), exc)
                if len(self._observed) < MAX_PENDING:
                    self._requeue(steps)
                else:
                    self.dropped += len(steps)

    def _requeue(self, steps: list[Step]) -> None:
        self._observed[:0] = [Observation(s.kind, s.at, s.user, s.notification, s.by, s.detail)
                              for s in steps]


def _notification_id(data: str) -> str | None:
    """The id of a ``notification`` event's JSON (``store/shape.py`` writes it first)."""
    if data.startswith(_ID_PREFIX):
        end = data.find('"', len(_ID_PREFIX))
        if end > 0:
            return data[len(_ID_PREFIX):end]
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    nid = obj.get("id") if isinstance(obj, dict) else None
    return nid if isinstance(nid, str) else None
