"""The transactional outbox: what happened to a notification, written as rows in the
same transaction as the change itself, so a node dying right after the commit loses
nothing (event webhooks, docs/webhooks.md).

The store imports no feature: a :class:`Happening` is plain data, and the
:class:`Outbox` that turns happenings into statements is registered on the
``Database`` by the feature that wants them (``Database.outbox``). Every writer that
commits such a change (a read-state change, an ack, an escalation step, a gone push
subscription, an unsubscribe) passes its happenings to ``Database.happened`` inside
its transaction; with no outbox registered, or none wanting the kinds, that costs a
set lookup and no statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tocsin.store.hooks import Many


@dataclass(frozen=True, slots=True)
class Happening:
    """One thing that happened, as the outbox is told it (the same facts as the
    kernel's ``Observation``, which the store cannot import)."""

    kind: str
    user: str | None = None
    notification: str | None = None
    by: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None
    """Where a retried writer can report the same happening twice (an escalation
    step run again after a crash), a key naming it: its event id is derived from it,
    so the second write is a no-op instead of a second event."""


class Outbox(Protocol):
    def wants(self, kind: str) -> bool:
        """Whether any statement would be written for ``kind`` (no I/O: it is asked
        on every read-state change)."""
        ...

    def statements(self, items: Sequence[Happening]) -> list[Many]:
        """The statements (``?`` placeholders) writing ``items``, run in the
        caller's transaction; only items of kinds it :meth:`wants` are given."""
        ...

    def committed(self) -> None:
        """A transaction holding rows from :meth:`statements` has committed (called
        after the commit; must not block or raise): e.g. wake what sends them."""
        ...


class NoOutbox:
    def wants(self, kind: str) -> bool:
        return False

    def statements(self, items: Sequence[Happening]) -> list[Many]:
        return []

    def committed(self) -> None:
        pass


NO_OUTBOX = NoOutbox()
