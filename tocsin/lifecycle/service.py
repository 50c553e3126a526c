"""``Lifecycle``: snooze and the publisher's update/retract by idempotency key, as
operations on the kernel: stored (``store/lifecycle.py``), then fanned out. The
snooze wake is a ``snooze`` timer of the kernel's scheduler (one poll loop per
node)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tocsin.errors import TocsinError
from tocsin.ids import now_ms
from tocsin.scheduler import NewTimer, Timer
from tocsin.store.base import Change, Json

if TYPE_CHECKING:
    from tocsin.kernel import Kernel

MAX_SNOOZE_MS = 366 * 24 * 3600 * 1000


class Lifecycle:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    async def start(self) -> None:
        """Register the snooze wake on the kernel's scheduler (before it starts)."""
        from tocsin.store.lifecycle import SNOOZE_TIMER_KIND

        if self.kernel.has_database:
            self.kernel.timers.on(SNOOZE_TIMER_KIND, self._wake)

    # -- snooze ----------------------------------------------------------------------
    async def snooze(self, user: str, id: str, until: int) -> Change | None:
        from tocsin.store.lifecycle import snooze

        now = self.kernel.clock()
        if until <= now or until > now + MAX_SNOOZE_MS:
            raise TocsinError("invalid_field", "'until' must be in the future (ms since the "
                              "epoch), at most a year ahead.", "until")
        change = await snooze(self.kernel.db, user, id, until, now)
        if change is not None:
            await self.kernel.fan_out(change.events)
        return change

    async def unsnooze(self, user: str, id: str) -> bool:
        """Bring a snoozed notification back now (undo, "Wake now"); False if it is not
        the user's or not snoozed."""
        from tocsin.store.lifecycle import unsnooze

        evs = await unsnooze(self.kernel.db, user, id, now_ms())
        if evs is None:
            return False
        await self.kernel.fan_out(evs)
        return True

    async def _wake(self, timer: Timer) -> list[NewTimer]:
        from tocsin.store.lifecycle import wake

        evs = await wake(self.kernel.db, str(timer.payload["user"]), timer.key,
                         int(timer.payload["until"]), now_ms())
        await self.kernel.fan_out(evs)
        return []

    # -- publisher update / retract ----------------------------------------------------
    async def _copies(self, key: str) -> dict[str, str]:
        from tocsin.store.idempotency import IDEMPOTENCY_WINDOW_MS, published

        # the idempotency record's times are the store's own clock (store/sql.py)
        ids = await published(self.kernel.db, key, now_ms() - IDEMPOTENCY_WINDOW_MS)
        if ids is None:
            raise TocsinError("not_found", "No notification was published with this "
                              "idempotencyKey in the last 24 hours (only publishes made "
                              "with an idempotencyKey can be updated or retracted).")
        return ids

    async def update_by_key(self, publisher: str, key: str, changes: Json) -> dict[str, str]:
        from tocsin.store.lifecycle import update_copies

        ids = await self._copies(key)
        done, evs = await update_copies(self.kernel.db, ids, changes, now_ms())
        await self.kernel.fan_out(evs)
        return done

    async def retract_by_key(self, publisher: str, key: str) -> dict[str, str]:
        from tocsin.store.lifecycle import retract_copies

        ids = await self._copies(key)
        done, evs = await retract_copies(self.kernel.db, ids, now_ms())
        await self.kernel.fan_out(evs)
        return done
