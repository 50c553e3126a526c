"""What happened to a notification, reported from the one place each thing is
decided (the kernel, the features, the channel seam): the seam the delivery trail
records and the console's failures keep. (Event webhooks do not observe: their events
are written in the changes' own transactions, ``store/outbox.py``.)

Reporting must cost next to nothing on the hot path: observers are plain
callables that only queue what they are given (they write in the background, in
batches), and a reporter that would build many observations checks
:attr:`Observations.active` first, so a node with nobody listening builds none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("tocsin")


@dataclass(frozen=True, slots=True)
class Observation:
    kind: str
    """Dotted, e.g. ``notification.read``, ``push.sent``, ``email.suppressed``."""
    at: int
    """When, ms since the epoch (the kernel's clock)."""
    user: str | None = None
    notification: str | None = None
    """The notification id, where there is one."""
    by: str | None = None
    """Who caused it where that is known (a user, a publisher, ``system``)."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """JSON-able facts of this kind (a reason, a status, a transport, a channel)."""


Observer = Callable[[Sequence[Observation]], None]
"""Called synchronously with each report; must not block or raise (queue and return)."""


class Observations:
    """The node's observers. The kernel owns one; the assembly point subscribes."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    @property
    def active(self) -> bool:
        return bool(self._observers)

    def report(self, items: Sequence[Observation]) -> None:
        if not items:
            return
        for observer in self._observers:
            try:
                observer(items)
            except Exception:  # an observer's bug must never fail the change it observes
                log.exception("observer %r failed", observer)
