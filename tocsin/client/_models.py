"""The shapes the SDK returns. What the server sends as JSON stays JSON: a ``TypedDict``
with the API's own (camelCase) keys, so a result can be stored, logged or sent on as is
and the HTTP reference (README) describes it word for word. What the SDK computes is a
frozen dataclass (:class:`PublishResult`, :class:`Token`, ``Event``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

Priority = Literal["urgent", "high", "medium", "low"]
Channel = Literal["inbox", "interrupt", "push", "email"]
DigestPeriod = Literal["off", "hourly", "daily"]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The reply to a publish. ``ids``: recipient -> notification id, for everyone it
    was stored for; ``skipped``: recipient -> reason, for those it was not stored for
    (their preferences turn the type off); ``silent``: recipient -> ``silentReason``,
    for those who got it without an interruption (preferences, ``dnd``,
    ``quiet_hours``); ``incident``: the incident a publish with ``escalation`` opened."""

    ids: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    silent: dict[str, str] = field(default_factory=dict)
    incident: str | None = None

    @classmethod
    def from_wire(cls, reply: Any) -> PublishResult:
        return cls(dict(reply.get("ids") or {}), dict(reply.get("skipped") or {}),
                   dict(reply.get("silent") or {}), reply.get("incident"))


@dataclass(frozen=True, slots=True)
class Token:
    """A subscriber token and when it expires (seconds since the epoch)."""

    token: str
    expires_at: float


class Group(TypedDict):
    """A grouped notification's ``group`` (docs/grouping.md)."""

    key: str
    count: int
    actors: list[str]


class Notification(TypedDict):
    """One notification of an inbox (also the ``data`` of a ``notification`` or
    ``updated`` event). Times are ms since the epoch."""

    id: str
    type: str
    title: str
    body: str
    priority: Priority
    timestamp: int
    read: bool
    silent: bool
    eventId: str
    readAt: NotRequired[int]
    silentReason: NotRequired[str]
    groupKey: NotRequired[str]
    group: NotRequired[Group]
    url: NotRequired[str]
    actor: NotRequired[str]
    source: NotRequired[str]
    data: NotRequired[dict[str, Any]]
    expiresAt: NotRequired[int]


class NotificationPage(TypedDict):
    """A page of an inbox: newest first (oldest first after ``since``)."""

    items: list[Notification]
    unreadCount: int
    nextCursor: str | None
    lastEventId: str


class InboxChange(TypedDict):
    """What a read-state change did (also the ``data`` of ``read``, ``unread``,
    ``read_all``, ``deleted`` and ``snoozed`` events): the notifications it changed and
    the unread count after it."""

    ids: list[str]
    unreadCount: int
    upTo: NotRequired[str]
    type: NotRequired[str]
    until: NotRequired[int]


class SnoozeResult(TypedDict):
    ids: list[str]
    until: int
    unreadCount: int


class TopicEvent(TypedDict):
    """One event of a topic feed (also the ``data`` of an ``activity`` event)."""

    id: str
    topic: str
    type: str
    title: str
    body: str
    timestamp: int
    actor: NotRequired[str]
    data: NotRequired[dict[str, Any]]


class TopicPage(TypedDict):
    items: list[TopicEvent]
    nextCursor: str | None
    lastEventId: str


class Ack(TypedDict):
    """The reply to an acknowledgement (also close to an ``acked`` event's data)."""

    incident: str
    state: str
    ackedBy: str | None
    ackedAt: int | None


class Acked(TypedDict):
    """An ``acked`` event's data: ``incident`` was acknowledged by ``by``;
    ``ids`` are this user's notifications of it."""

    id: str
    ids: list[str]
    incident: str
    by: str
    at: int


class PolicyStep(TypedDict):
    """One step of an escalation policy: notify ``targets``, then wait."""

    targets: list[str]
    waitSeconds: int
    skipIfNobodyActive: NotRequired[bool]


class Policy(TypedDict):
    name: str
    steps: list[PolicyStep]
    repeat: int


class TimelineEntry(TypedDict):
    kind: str
    at: int
    round: NotRequired[int]
    step: NotRequired[int]
    user: NotRequired[str]
    notificationId: NotRequired[str]
    active: NotRequired[bool | None]


class Incident(TypedDict):
    """An incident and its timeline (docs/escalation.md)."""

    id: str
    policy: str
    state: str
    createdAt: int
    ackedBy: str | None
    ackedAt: int | None
    next: dict[str, int] | None
    steps: list[PolicyStep]
    repeat: int
    timeline: list[TimelineEntry]


class TypePreferences(TypedDict, total=False):
    """What one notification type may do for a user (docs/attention.md)."""

    channels: list[Channel]
    minPriority: Priority
    pushMinPriority: Priority
    emailAfter: int


class QuietHours(TypedDict):
    timezone: str
    start: str
    end: str
    days: NotRequired[list[str]]


class Dnd(TypedDict):
    until: int
    since: NotRequired[int | None]


class Preferences(TypedDict):
    """A user's attention preferences, defaults filled in, with the publisher's
    per-type ``defaults`` (read-only)."""

    types: dict[str, TypePreferences]
    quietHours: QuietHours | None
    dnd: Dnd | None
    urgentBypassesQuiet: bool
    emailDigest: DigestPeriod
    defaults: NotRequired[dict[str, TypePreferences]]


class Defaults(TypedDict):
    """The publisher's defaults per type (a user's own choice overrides them)."""

    types: dict[str, TypePreferences]


class Digest(TypedDict):
    """A ``digest`` event's data: ``count`` notifications arrived silently between
    ``since`` and ``until``; ``eventId`` where :meth:`UserClient.digest` found it."""

    count: int
    since: int
    until: int
    eventId: NotRequired[str]


class User(TypedDict):
    user: str
    email: str | None
