"""The attention service: preferences and publisher defaults (validated, stored),
the digest timer's handler, and the clock quiet hours are judged by."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from tocsin.attention.model import MAX_TYPES, Dnd, parse_defaults, parse_preferences
from tocsin.errors import TocsinError
from tocsin.ids import now_ms
from tocsin.scheduler import Clock, NewTimer, Timer
from tocsin.store.base import Json

if TYPE_CHECKING:
    from tocsin.kernel import Kernel
    from tocsin.store.preferences import SqlPreferenceStore

log = logging.getLogger("tocsin.attention")

EMPTY: Json = {"types": {}, "quietHours": None, "dnd": None, "urgentBypassesQuiet": True,
              "emailDigest": "off"}


class Attention:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.clock: Clock = kernel.clock  # the node's; reach/ reads it here for now
        self._prefs: SqlPreferenceStore | None = None

    async def start(self) -> None:
        from tocsin.store.preferences import DIGEST_KIND, SqlPreferenceStore

        if not self.kernel.has_database:
            return
        self._prefs = SqlPreferenceStore(self.kernel.db)
        # the node's one durable scheduler: a digest fires once across nodes
        self.kernel.timers.on(DIGEST_KIND, self._digest)

    @property
    def prefs(self) -> SqlPreferenceStore:
        if self._prefs is None:
            raise TocsinError("not_found", "Preferences need a SQL store.")
        return self._prefs

    async def get(self, user: str) -> Json:
        from tocsin.store.preferences import DEFAULTS_USER

        own = await self.prefs.get(user)
        defaults = await self.prefs.get(DEFAULTS_USER)
        # a fresh copy of EMPTY: a caller editing the reply must not change it for all
        return {**copy.deepcopy(EMPTY), **(own or {}),
                "defaults": (defaults or {}).get("types", {})}

    async def put(self, user: str, raw: object, *, unsubscribe: bool = False) -> Json:
        """Replace ``user``'s preferences. At most :data:`MAX_TYPES` types, or as many
        as are stored already (unsubscribe links may have added some beyond it, and the
        page that sends back what ``GET`` showed must keep working); ``unsubscribe``:
        an unsubscribe link's write, which may add types up to the model's hard cap."""
        from tocsin.store.preferences import DEFAULTS_USER

        prefs = parse_preferences(raw)
        old = await self.prefs.get(user)
        stored = len((old or {}).get("types") or {})
        if not unsubscribe and len(prefs.types) > max(MAX_TYPES, stored):
            raise TocsinError("invalid_field", f"'types': at most {MAX_TYPES} types.", "types")
        if prefs.dnd is not None:
            old_dnd: dict[str, Any] = (old or {}).get("dnd") or {}
            since = (old_dnd.get("since") if old_dnd.get("until") == prefs.dnd.until
                     else None)
            prefs.dnd = Dnd(until=prefs.dnd.until, since=since or self.clock())
        wire = prefs.wire()
        defaults = await self.prefs.get(DEFAULTS_USER)
        # what GET answers from now on, announced to every tab and device in the stream
        reply = {**copy.deepcopy(EMPTY), **wire, "defaults": (defaults or {}).get("types", {})}
        await self.kernel.fan_out(await self.prefs.put_announced(user, wire, reply))
        return reply

    async def get_defaults(self) -> Json:
        from tocsin.store.preferences import DEFAULTS_USER

        return {"types": ((await self.prefs.get(DEFAULTS_USER)) or {}).get("types", {})}

    async def put_defaults(self, raw: object) -> Json:
        from tocsin.store.preferences import DEFAULTS_USER

        await self.prefs.put(DEFAULTS_USER, parse_defaults(raw).wire(), self.clock())
        return await self.get_defaults()

    async def latest_digest(self, user: str) -> Json | None:
        return await self.prefs.latest_digest(user)

    async def _digest(self, timer: Timer) -> list[NewTimer]:
        ev = await self.prefs.write_digest(timer.key, int(timer.payload["until"]), now_ms())
        if ev is not None:
            self.kernel.metrics.events.labels("digest").inc()
            await self.kernel.fan_out([ev])
        return []
