"""What both reach channels check when their timer fires (it may fire long after the
publish: ``emailAfter``, the end of a quiet period, a retry): the notification is
still there, unread and not expired, and the user's preferences *now*
still want this channel and are not in a quiet period (else: try again at its end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from tocsin.attention.decide import QUIET_REASONS, decide, reach
from tocsin.scheduler import RetryLater
from tocsin.store.base import Json

if TYPE_CHECKING:
    from tocsin.service import Tocsin

ReachChannel = Literal["push", "email"]


async def still_wanted(tocsin: Tocsin, user: str, nid: str, channel: ReachChannel
                       ) -> Json | None:
    """The notification (as :meth:`Store.get_notification` gives it) if ``channel``
    should still carry it now; ``None`` if not (read, dismissed, expired, or the
    preferences changed). Raises :class:`RetryLater` during a quiet period."""
    from tocsin.store.preferences import DEFAULTS_USER

    note = await tocsin.store.get_notification(user, nid)
    now = tocsin.attention.clock()
    if note is None or note.get("read"):
        return None
    expires = note.get("expiresAt")
    if isinstance(expires, int) and expires <= now:
        return None
    prefs = await tocsin.attention.prefs.get(user)
    defaults = await tocsin.attention.prefs.get(DEFAULTS_USER)
    type_, priority = str(note["type"]), str(note["priority"])
    reason, period = decide(prefs, defaults, type_, priority, now)
    if reason == "skip":
        return None
    push_due, email_due = reach(prefs, defaults, type_, priority, now, reason, period)
    due = push_due if channel == "push" else email_due
    if due is None:
        return None
    if reason in QUIET_REASONS and period is not None and period[1] > now:
        raise RetryLater(period[1] - now, reason)
    return note
