"""Records the trail off the hot path.

Two feeds, both only queued where they happen:

- the kernel's observations (``kernel/observe.py``): the channel seam's outcomes,
  escalation steps, read-state changes, skipped recipients. The observer appends to a
  list and returns.
- the hub's writes (``Hub.live_writes``): each notification event of a user stream a
  connection took for live writing (appended by ``Hub.deliver``) or queued from a
  store read (``streams/follow.py``), no parsing there. The flush keeps the first per
  notification (an id names one recipient's copy) as one ``tocsin_trail_writes`` row;
  the database keeps the first of all (``ON CONFLICT DO NOTHING``: a second tab, a
  reconnect, another node).

A background task swaps both lists every :data:`FLUSH_EVERY_S`. The observations go in
one insert of their own. The first writes, one per delivered notification (the hot
path's share), are handed to the store's group commit in chunks of
:data:`RIDE_ROWS` (``store/riders.py``): they are written in the publishes' own
transactions, never holding the writer lock for a transaction of their own while
publishes queue behind it. When no group commit took any for a whole period (nothing
is being published), the task writes them itself. It also prunes rows older than the
retention. What waits is bounded (:data:`MAX_PENDING`): beyond it, steps are dropped
and counted, never blocking delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from tocsin.events import USER_PREFIX
from tocsin.kernel.observe import Observation
from tocsin.store import trail as rows
from tocsin.store.hooks import NO_HOOK
from tocsin.store.riders import RidingHook
from tocsin.store.trail import WRITE_INSERT, Step

if TYPE_CHECKING:
    from tocsin.kernel.kernel import Kernel

log = logging.getLogger("tocsin")

FLUSH_EVERY_S = 0.5
PRUNE_EVERY_S = 60.0
MAX_PENDING = 200_000
"""Steps held between flushes at most (a database away for a while): the oldest
surplus is dropped rather than growing without bound."""
RIDE_ROWS = 250
"""First writes per group-commit transaction at most: ~0.4 ms of SQLite work added to
the transaction that takes them (1.5 us a row), so no publish waits behind a flush."""
Write = tuple[str, int, str, int]
"""A first write: notification id, ms, transport, 1 if caught up from the store."""
_ID_PREFIX = '{"id":"'


class TrailRecorder:
    def __init__(self, kernel: Kernel, rider: RidingHook | None = None) -> None:
        """``rider``: the store's publish hook, when it is a :class:`RidingHook` (the
        assembly point builds it so); without one, nothing takes the first writes and
        this task writes them every round."""
        self.kernel = kernel
        self.rider = rider or RidingHook(NO_HOOK)
        self._observed: list[Observation] = []
        self._live: list[tuple[str, str, str, int, bool]] = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self._last_prune = 0.0
        self._taken = -1  # the rider's ``taken`` at the last round

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

    def _take(self) -> tuple[list[Step], list[Write]]:
        observed, self._observed = self._observed, []
        live = self._live
        if len(live) > MAX_PENDING:
            self.dropped += len(live) - MAX_PENDING
            del live[MAX_PENDING:]
        taken = live[:]
        del live[:]  # the hub holds this very list: empty it in place
        steps = [Step(o.notification, o.user or "", o.at, o.kind, o.by, dict(o.detail))
                 for o in observed if o.user]
        firsts: dict[str, Write] = {}
        for stream, data, transport, at, caught_up in taken:
            if not stream.startswith(USER_PREFIX):
                continue  # a topic's event (the hub does not tell them apart: no cost there)
            nid = _notification_id(data)
            # (an id longer than the column would fail the transaction it rides with)
            if nid is not None and len(nid) <= 40 and nid not in firsts:
                firsts[nid] = (nid, at, transport, 1 if caught_up else 0)
        return steps, list(firsts.values())

    def _ride(self, firsts: list[Write]) -> None:
        """Hand ``firsts`` to the group commit (beyond the bound, drop them)."""
        rider = self.rider
        room = MAX_PENDING // RIDE_ROWS - rider.waiting
        for i in range(0, len(firsts), RIDE_ROWS):
            if room <= 0:
                self.dropped += len(firsts) - i
                break
            rider.ride((WRITE_INSERT, list(firsts[i:i + RIDE_ROWS])))
            room -= 1

    def _unridden(self, everything: bool) -> list[Write]:
        """What waits for a group commit although none took anything since the last
        round (nothing is published: no transaction to ride with), or ``everything``."""
        rider = self.rider
        idle = rider.taken == self._taken
        self._taken = rider.taken
        if not (idle or everything) or not rider.waiting:
            return []
        return [row for _, rows_ in rider.take_all() for row in rows_]

    async def flush(self) -> int:
        """Write everything collected now, in transactions of its own (shutdown)."""
        steps, firsts = self._take()
        firsts += self._unridden(everything=True)
        if steps:
            await rows.append(self.kernel.db, steps)
        await rows.append_writes(self.kernel.db, firsts)
        return len(steps) + len(firsts)

    async def prune(self, now: int) -> int:
        return await rows.prune(self.kernel.db, now - int(self.kernel.retention_s * 1000))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        prune_every = min(PRUNE_EVERY_S, max(1.0, self.kernel.retention_s / 4))
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            steps, firsts = self._take()
            own = self._unridden(everything=False)
            self._ride(firsts)
            try:
                if steps:
                    await rows.append(self.kernel.db, steps)
                    steps = []
                await rows.append_writes(self.kernel.db, own)
                own = []
                if loop.time() - self._last_prune >= prune_every:
                    self._last_prune = loop.time()
                    await self.prune(self.kernel.clock())
            except Exception as exc:  # the database may be away: keep them for next round
                log.warning("trail: writing %d steps failed: %r", len(steps) + len(own), exc)
                if len(self._observed) < MAX_PENDING:
                    self._requeue(steps)
                else:
                    self.dropped += len(steps)
                self._ride(own)  # the next round writes them if nobody takes them

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
