"""Snooze and the publisher's update/retract by idempotency key, as service
operations: stored (``store/snooze.py``, ``store/grouping.py``), then fanned out.
Live grouping itself happens inside the publish (``store/grouping.py``). The snooze
wake is a ``snooze`` timer run by the escalation's scheduler (one poll loop per
node). See ``docs/grouping.md``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tocsin.errors import TocsinError
from tocsin.ids import now_ms
from tocsin.scheduler import NewTimer, Timer
from tocsin.store.base import Change, Json

if TYPE_CHECKING:
    from tocsin.service import Tocsin
    from tocsin.store.db import Database

MAX_SNOOZE_MS = 366 * 24 * 3600 * 1000
KEY_WINDOW_MS = 24 * 3600 * 1000  # the idempotency window (store/sql.py)


class Grouping:
    def __init__(self, tocsin: Tocsin) -> None:
        self.tocsin = tocsin

    def _db(self) -> Database:
        from tocsin.store.sql import SqlStore

        store = self.tocsin.store
        if not isinstance(store, SqlStore):
            raise TocsinError("not_found", "This needs a SQL store.")
        return store.db

    async def start(self) -> None:
        """Register the snooze wake with the node's scheduler (after escalation's start)."""
        from tocsin.store.grouping import SNOOZE_TIMER_KIND
        from tocsin.store.sql import SqlStore

        if isinstance(self.tocsin.store, SqlStore):
            self.tocsin.escalation.scheduler.on(SNOOZE_TIMER_KIND, self._wake)

    # -- snooze ----------------------------------------------------------------------
    async def snooze(self, user: str, id: str, until: int) -> Change | None:
        from tocsin.store.snooze import snooze

        now = self.tocsin.escalation.clock()
        if until <= now or until > now + MAX_SNOOZE_MS:
            raise TocsinError("invalid_field", "'until' must be in the future (ms since the "
                              "epoch), at most a year ahead.", "until")
        change = await snooze(self._db(), user, id, until, now)
        if change is not None:
            await self.tocsin.hub.fan_out(change.events)
        return change

    async def unsnooze(self, user: str, id: str) -> bool:
        """Bring a snoozed notification back now (undo, "Wake now"); False if it is not
        the user's or not snoozed."""
        from tocsin.store.snooze import unsnooze

        evs = await unsnooze(self._db(), user, id, now_ms())
        if evs is None:
            return False
        await self.tocsin.hub.fan_out(evs)
        return True

    async def _wake(self, timer: Timer) -> list[NewTimer]:
        from tocsin.store.snooze import wake

        evs = await wake(self._db(), str(timer.payload["user"]), timer.key,
                         int(timer.payload["until"]), now_ms())
        await self.tocsin.hub.fan_out(evs)
        return []

    # -- publisher update / retract ----------------------------------------------------
    async def _copies(self, key: str) -> dict[str, str]:
        from tocsin.store.grouping import published

        # the idempotency record's times are the store's own clock (store/sql.py)
        ids = await published(self._db(), key, now_ms() - KEY_WINDOW_MS)
        if ids is None:
            raise TocsinError("not_found", "No notification was published with this "
                              "idempotencyKey in the last 24 hours (only publishes made "
                              "with an idempotencyKey can be updated or retracted).")
        return ids

    async def update_by_key(self, publisher: str, key: str, changes: Json) -> dict[str, str]:
        from tocsin.store.grouping import update_copies

        ids = await self._copies(key)
        done, evs = await update_copies(self._db(), ids, changes, now_ms())
        await self.tocsin.hub.fan_out(evs)
        return done

    async def retract_by_key(self, publisher: str, key: str) -> dict[str, str]:
        from tocsin.store.grouping import retract_copies

        ids = await self._copies(key)
        done, evs = await retract_copies(self._db(), ids, now_ms())
        await self.tocsin.hub.fan_out(evs)
        return done
