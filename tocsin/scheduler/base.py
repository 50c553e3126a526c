"""The durable timer seam: a timer is a database row (``kind``, ``key``, ``payload``,
``due_at``) that a node *claims* with a lease before running it.

Contract (``tests/scheduler`` runs it against SQLite and PostgreSQL):
- ``claim`` hands a due timer to at most one owner at a time: concurrent claims
  (other nodes, other tasks) never get the same timer while its lease runs
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; the single writer on SQLite).
- A claimed timer stays in the table until its owner ``finish``es it (deleted, and
  the follow-up timers added, in one transaction) or ``release``s it (due again at
  a later time). A node that dies holding a lease simply lets it expire: the timer
  is claimable again once ``lease_until`` has passed.
- ``finish`` and ``release`` only act while the caller still owns the lease; after
  it expired and someone else claimed the timer they return ``False``.
- Time is always passed in (``now``, ms since the epoch), never read by the store:
  the clock is injectable (:data:`Clock`).

A timer therefore fires *at least once*, and exactly once unless its handler outlives
its lease or its node dies mid-run; handlers make their effects idempotent by the
timer (escalation publishes with an idempotency key per step), which makes the
effect exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Clock = Callable[[], int]
"""The current time in ms since the epoch."""


@dataclass(slots=True, frozen=True)
class NewTimer:
    id: str
    """Unique; adding an id that exists already is a no-op (idempotent scheduling)."""
    kind: str
    key: str
    """What the timer is about (an incident id, a notification id): ``cancel`` by it."""
    due_at: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Timer:
    id: str
    kind: str
    key: str
    due_at: int
    payload: dict[str, Any]
    attempts: int
    """How many times it was claimed, this claim included."""
    owner: str
    lease_until: int


@runtime_checkable
class TimerStore(Protocol):
    async def add_timers(self, timers: list[NewTimer], now: int) -> None:
        """Store ``timers`` (ids that exist already are left as they are)."""
        ...

    async def claim(self, owner: str, now: int, lease_ms: int, limit: int = 50,
                    ids: list[str] | None = None,
                    skip_kinds: Collection[str] = ()) -> list[Timer]:
        """Lease up to ``limit`` timers due at ``now`` (``due_at <= now``) that nobody
        holds (or whose lease expired), oldest due first; only ``ids`` if given; none
        of ``skip_kinds`` (kinds the claimer has no room to run now)."""
        ...

    async def finish(self, timer: Timer, then: list[NewTimer], now: int) -> bool:
        """Delete ``timer`` and add ``then`` in one transaction, if ``timer.owner``
        still holds it; ``False`` (nothing written) otherwise."""
        ...

    async def release(self, timer: Timer, due_at: int) -> bool:
        """Give the lease back; the timer is due again at ``due_at``."""
        ...

    async def cancel(self, kind: str, key: str) -> int:
        """Delete every timer of ``kind`` about ``key``; how many there were."""
        ...

    async def pending(self, kind: str | None = None, key: str | None = None) -> list[Timer]:
        """Timers not yet finished (for tests, stats and timelines), by due time."""
        ...
