"""The store seam: durable notifications, read state and the per-stream event log.

Ordering contract (every implementation must keep it; ``tests/store`` checks it):
- Each stream (``u:<user>``, ``t:<topic>``) has its own seq counter. Every write
  that emits events to a stream allocates consecutive seqs and holds the stream's
  counter until its transaction commits, so events of one stream become visible
  in seq order: a reader that sees seq N also sees every seq < N.
- A write either commits entirely (rows *and* events) or not at all.
- Events are kept for the retention period; ``stream_bounds`` tells how far back
  a stream can be replayed.
- Each stream has an epoch, a random tag the database sets when it creates the
  stream's counter and never changes afterwards (a fresh database gives the same
  stream a different one). Every event id and cursor the store renders is
  ``<epoch>-<seq>`` (``tocsin.ids``); a cursor passed in must fit the stream's
  current epoch (checked in the same read), else ``TocsinError("bad_cursor")``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from tocsin.events import StreamEvent
from tocsin.ids import Position

Json = dict[str, Any]


@dataclass(slots=True)
class NewNotification:
    type: str
    title: str
    body: str = ""
    priority: str = "medium"
    group_key: str | None = None
    url: str | None = None
    actor: str | None = None
    source: str | None = None
    data: Json | None = None
    expires_at: int | None = None  # ms epoch
    ttl_ms: int | None = None
    """Relative expiry: the store sets ``expires_at`` from its own clock at write time."""


@dataclass(slots=True)
class NewTopicEvent:
    type: str
    title: str
    body: str = ""
    actor: str | None = None
    data: Json | None = None


@dataclass(slots=True)
class PublishResult:
    ids: dict[str, str]
    """recipient -> notification id"""
    events: list[StreamEvent] = field(default_factory=list)
    """The events to fan out; empty when this was an idempotent replay."""
    replayed: bool = False
    skipped: dict[str, str] | None = None
    """Recipients not delivered to, by reason (attention preferences); None: nobody."""
    silent: dict[str, str] | None = None
    """Recipients who got it silently, with the ``silentReason``; None: nobody."""
    reached: int = 0
    """How many channel timers (push, email, ...) the publish wrote (the node kicks
    its scheduler)."""


@dataclass(slots=True)
class PublishItem:
    """One notification of a bulk publish (:meth:`Store.publish_many`)."""

    recipients: list[str]
    note: NewNotification
    idempotency_key: str | None = None


@dataclass(slots=True)
class Change:
    """The outcome of a read-state change: the event emitted (if any) and the new count."""

    unread_count: int
    ids: list[str]
    events: list[StreamEvent] = field(default_factory=list)


@dataclass(slots=True)
class ListQuery:
    limit: int = 50
    before: Position | None = None  # cursor, exclusive
    since: Position | None = None  # event id, exclusive; switches to oldest-first
    unread: bool = False
    type: str | None = None
    priority: str | None = None
    source: str | None = None
    snoozed: bool = False  # only the snoozed rows (each with ``snoozedUntil``)


@dataclass(slots=True)
class Page:
    items: list[Json]
    next_cursor: str | None
    last_event_id: str
    unread_count: int | None = None


class Bounds(NamedTuple):
    """How far a stream can be replayed: events with seq <= ``pruned_upto`` are gone;
    ``head`` is the newest seq; ``(0, 0, "")`` for a stream never written."""

    pruned_upto: int
    head: int
    epoch: str


@runtime_checkable
class Store(Protocol):
    url: str

    async def open(self) -> None:
        """Connect and bring the schema to the newest migration."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise :class:`~tocsin.errors.StoreUnavailable` if the database does not answer."""
        ...

    async def publish(self, publisher: str, recipients: list[str], note: NewNotification,
                      idempotency_key: str | None = None, *,
                      always_inbox: bool = False) -> PublishResult:
        """Store one notification per recipient (one transaction, batched writes) and one
        ``notification`` event in each recipient's stream; ``always_inbox``: even to
        recipients whose preferences leave its type out of the inbox (silently). A
        repeated ``idempotency_key`` within 24 h returns the first result and writes
        nothing, whichever API key (``publisher``) repeats it: a deployment's keys are
        one publisher."""
        ...

    async def publish_many(self, publisher: str, items: list[PublishItem]
                           ) -> list[PublishResult | Exception]:
        """:meth:`publish` for each item, as one unit of work: the items without an
        idempotency key or ``group_key`` share group-commit transactions (one when
        they fit), the others run as :meth:`publish` does, concurrently. One outcome
        per item, in order: its result, or the exception it alone failed with."""
        ...

    async def set_read(self, user: str, ids: list[str], read: bool) -> Change | None:
        """Mark ``ids`` read or unread. ``None`` if none of them is the user's. Emits a
        ``read``/``unread`` event only for notifications whose state changed."""
        ...

    async def read_all(self, user: str, type: str | None, before: Position | None) -> Change:
        """Mark every unread notification (of ``type``, with seq < ``before``) read; emits
        one ``read_all`` event ``{upTo, type?, unreadCount}`` if anything changed
        (``upTo`` an event id). ``before`` must fit the stream's epoch (``bad_cursor``)."""
        ...

    async def dismiss(self, user: str, id: str) -> Change | None:
        """Remove a notification from the inbox; ``None`` if it is not the user's."""
        ...

    async def get_notification(self, user: str, id: str) -> Json | None: ...

    async def list_notifications(self, user: str, query: ListQuery) -> Page:
        """``query.before``/``since`` must fit the stream's epoch (``bad_cursor``)."""
        ...

    async def unread_count(self, user: str) -> int: ...

    async def add_topic_event(self, topic: str, event: NewTopicEvent) -> StreamEvent:
        """Append an ``activity`` event to ``t:<topic>``."""
        ...

    async def topic_history(self, topic: str, query: ListQuery) -> Page: ...

    async def events_after(self, stream: str, after: int, limit: int) -> list[StreamEvent]:
        """Events of ``stream`` with seq > ``after``, oldest first, at most ``limit``,
        each carrying the stream's epoch."""
        ...

    async def stream_bounds(self, stream: str) -> Bounds:
        """``(pruned_upto, head, epoch)``; ``(0, 0, "")`` for a stream never written."""
        ...

    async def heads(self, streams: list[str]) -> dict[str, tuple[int, str]]:
        """``(head, epoch)`` of each of ``streams`` that exists."""
        ...

    async def prune(self, now_ms: int, retention_ms: int) -> int:
        """Delete events older than the retention and expired or dismissed notifications
        past it; returns how many events were deleted."""
        ...
