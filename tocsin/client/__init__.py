"""The Python SDK for Tocsin (httpx; SSE through httpx-sse, WebSocket through
``websockets``). See docs/python.md.

    from tocsin.client import Publisher, UserClient, subscribe

    with Publisher("http://127.0.0.1:8000", api_key) as pub:
        pub.publish(["alice"], "Deploy finished", priority="high")

    async for event in subscribe("http://127.0.0.1:8000", token_function):
        print(event.id, event.event, event.data)
"""

from __future__ import annotations

from tocsin.client._errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    TocsinAPIError,
    TocsinConnectionError,
    TocsinError,
    ValidationError,
)
from tocsin.client._models import (
    Ack,
    Acked,
    Channel,
    Defaults,
    Digest,
    DigestPeriod,
    Dnd,
    InboxChange,
    Incident,
    Notification,
    NotificationPage,
    Policy,
    PolicyStep,
    Preferences,
    Priority,
    PublishResult,
    QuietHours,
    SnoozeResult,
    Token,
    TopicEvent,
    TopicPage,
    TypePreferences,
    User,
)
from tocsin.client._publisher import AsyncPublisher, Publisher
from tocsin.client._subscribe import Event, Status, Transport, subscribe
from tocsin.client._tokens import TokenFunction
from tocsin.client._user import AsyncUserClient, UserClient

__all__ = [
    "Ack", "Acked", "AsyncPublisher", "AsyncUserClient", "AuthenticationError", "Channel",
    "ConflictError", "Defaults", "Digest", "DigestPeriod", "Dnd", "Event", "InboxChange",
    "Incident", "NotFoundError", "Notification", "NotificationPage", "Policy", "PolicyStep",
    "Preferences", "Priority", "PublishResult", "Publisher", "QuietHours", "RateLimitError",
    "SnoozeResult", "Status", "TocsinAPIError", "TocsinConnectionError", "TocsinError",
    "Token", "TokenFunction", "TopicEvent", "TopicPage", "Transport", "TypePreferences",
    "User", "UserClient", "ValidationError", "subscribe",
]
