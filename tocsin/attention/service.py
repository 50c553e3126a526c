"""The attention service: preferences and publisher defaults (validated, stored),
the digest timer's handler, the clock quiet hours are judged by, and what a channel
asks of attention when its timer fires (``tocsin.kernel.channel.Attention``)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tocsin.attention.decide import QUIET_REASONS, decide, reach, type_prefs
from tocsin.attention.model import (
    MAX_TYPE_CHARS,
    MAX_TYPES,
    STREAM_CHANNELS,
    Dnd,
    parse_defaults,
    parse_preferences,
)
from tocsin.errors import TocsinError
from tocsin.ids import now_ms
from tocsin.kernel.channel import ChannelRule
from tocsin.scheduler import Clock, NewTimer, RetryLater, Timer
from tocsin.store.base import Json
from tocsin.store.outbox import Happening
from tocsin.text import name_error

if TYPE_CHECKING:
    from tocsin.kernel import Kernel
    from tocsin.store.preferences import SqlPreferenceStore

log = logging.getLogger("tocsin.attention")

EMPTY: Json = {"types": {}, "quietHours": None, "dnd": None, "urgentBypassesQuiet": True,
              "emailDigest": "off"}


class Attention:
    def __init__(self, kernel: Kernel, channels: Sequence[ChannelRule] = ()) -> None:
        self.kernel = kernel
        self.channels = tuple(channels)
        """The registered channels (their rules), as the publish hook decides them."""
        self.channel_names: tuple[str, ...] = STREAM_CHANNELS + tuple(
            c.name for c in self.channels)
        """What a type's ``channels`` may name: the stream's own and the registered."""
        self.clock: Clock = kernel.clock  # the node's: quiet hours are judged by it
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

    async def put(self, user: str, raw: object, *, unsubscribe: bool = False,
                  also: Sequence[Happening] = ()) -> Json:
        """Replace ``user``'s preferences. At most :data:`MAX_TYPES` types, or as many
        as are stored already (unsubscribe links may have added some beyond it, and the
        page that sends back what ``GET`` showed must keep working); ``unsubscribe``:
        an unsubscribe link's write, which may add types up to the model's hard cap;
        ``also``: what the change means, written to the outbox in its transaction."""
        from tocsin.store.preferences import DEFAULTS_USER

        prefs = parse_preferences(raw, self.channel_names)
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
        await self.kernel.fan_out(await self.prefs.put_announced(user, wire, reply, also))
        return reply

    async def get_defaults(self) -> Json:
        from tocsin.store.preferences import DEFAULTS_USER

        return {"types": ((await self.prefs.get(DEFAULTS_USER)) or {}).get("types", {})}

    async def put_defaults(self, raw: object) -> Json:
        from tocsin.store.preferences import DEFAULTS_USER

        defaults = parse_defaults(raw, self.channel_names)
        await self.prefs.put(DEFAULTS_USER, defaults.wire(), self.clock())
        return await self.get_defaults()

    async def latest_digest(self, user: str) -> Json | None:
        return await self.prefs.latest_digest(user)

    async def _digest(self, timer: Timer) -> list[NewTimer]:
        ev = await self.prefs.write_digest(timer.key, int(timer.payload["until"]), now_ms())
        if ev is not None:
            self.kernel.metrics.events.labels("digest").inc()
            await self.kernel.fan_out([ev])
        return []

    # -- what a channel asks (tocsin.kernel.channel.Attention) -------------------------
    async def still_wanted(self, user: str, nid: str, channel: str) -> Json | None:
        """What a channel checks when its timer fires (it may fire long after the
        publish: ``emailAfter``, the end of a quiet period, a retry): the notification
        (as :meth:`Store.get_notification` gives it) if it is still there, unread and
        not expired, and the user's preferences *now* still want ``channel`` for it;
        ``None`` if not. Raises :class:`RetryLater` during a quiet period (try again
        at its end)."""
        from tocsin.store.preferences import DEFAULTS_USER

        note = await self.kernel.store.get_notification(user, nid)
        now = self.clock()
        if note is None or note.get("read"):
            return None
        expires = note.get("expiresAt")
        if isinstance(expires, int) and expires <= now:
            return None
        prefs = await self.prefs.get(user)
        defaults = await self.prefs.get(DEFAULTS_USER)
        type_, priority = str(note["type"]), str(note["priority"])
        reason, period = decide(prefs, defaults, type_, priority, now)
        if reason == "skip":
            return None
        if channel not in reach(prefs, defaults, type_, priority, now, reason, period,
                                self.channels):
            return None
        if reason in QUIET_REASONS and period is not None and period[1] > now:
            raise RetryLater(period[1] - now, reason)
        return note

    async def preferences(self, user: str) -> Json | None:
        return await self.prefs.get(user)

    async def turn_off(self, user: str, channel: str, types: Sequence[str],
                       also: Sequence[Happening] = ()) -> bool:
        """Turn ``channel`` off for ``types`` in ``user``'s preferences (an unsubscribe
        link). A type without an entry of its own gets a copy of the effective one
        (the user's ``"*"``, else the publisher default, else the built-in) without
        the channel; nothing else changes. Idempotent: nothing is written when the
        channel is off already.

        Works beyond the 100 types a user may set (``put(unsubscribe=True)``). A type
        that is not a valid name (a link from before publish checked types) is left
        out: no notification of that type can be published any more, so nothing of it
        comes again, and the link still works.

        ``also`` (the channel's own event, ``email.unsubscribed``) is written to the
        outbox in the transaction of the change; ``True`` if anything changed."""
        from tocsin.store.preferences import DEFAULTS_USER

        own = await self.prefs.get(user)
        defaults = await self.prefs.get(DEFAULTS_USER)
        new: dict[str, Any] = {**EMPTY, **(own or {})}
        new.pop("defaults", None)
        types_out = dict(new.get("types") or {})
        changed = False
        for t in types:
            if name_error(t) is not None or len(t) > MAX_TYPE_CHARS:
                continue
            entry = dict(type_prefs(own, defaults, t))
            channels = list(entry.get("channels") or [])
            if channel not in channels:
                continue
            entry["channels"] = [c for c in channels if c != channel]
            types_out[t] = entry
            changed = True
        if changed:
            new["types"] = types_out
            await self.put(user, new, unsubscribe=True, also=also)
            log.info("%s: user %r unsubscribed from %s", channel, user,
                     ", ".join(map(repr, types)))
        return changed
