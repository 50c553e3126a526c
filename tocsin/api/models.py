"""Request bodies (pydantic v2, camelCase on the wire) and reply shapes for OpenAPI."""

from __future__ import annotations

import math
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from tocsin.routing import ErrorBody, ErrorOut
from tocsin.text import Name, Text, check_names

__all__ = ["ErrorBody", "ErrorOut"]  # re-exported: they live in tocsin.routing

Priority = Literal["urgent", "high", "medium", "low"]
MAX_RECIPIENTS = 10_000
MAX_BODY_BYTES = 4 * 1024
MAX_DATA_BYTES = 16 * 1024


class RequestBody(BaseModel):
    """The base of every request body: camelCase on the wire, no unknown field."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def check_body(v: str) -> str:
    """A notification's ``body``: at most :data:`MAX_BODY_BYTES` bytes of UTF-8."""
    if len(v.encode()) > MAX_BODY_BYTES:
        raise ValueError(f"body is larger than {MAX_BODY_BYTES} bytes")
    return v


INT_RANGE = (-(2**63), 2**64 - 1)
"""Integers ``data`` may hold: what the stored JSON (orjson) can write back."""


def _check_numbers(v: Any) -> None:
    """Refuse numbers JSON cannot carry back: NaN and infinities (``1e400`` parses as
    one) would be stored as ``null``; integers beyond 64 bits cannot be serialised."""
    stack = [v]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers in data must be finite (no NaN, Infinity or 1e400)")
        elif isinstance(item, int) and not INT_RANGE[0] <= item <= INT_RANGE[1]:
            raise ValueError("integers in data must fit in 64 bits")


def check_data(v: dict[str, Any] | None) -> dict[str, Any] | None:
    """A notification's ``data``: JSON that is stored and read back unchanged, at most
    :data:`MAX_DATA_BYTES` bytes."""
    if v is None:
        return v
    # The walk over every value (_check_numbers) only when the encoding says it may
    # find something: orjson refuses integers beyond 64 bits and writes NaN and the
    # infinities as null, so data that encodes without a "null" has neither. The same
    # errors, in the same order, as walking first; most data is encoded once, no walk.
    try:
        text = orjson.dumps(v)
    except orjson.JSONEncodeError:  # a lone surrogate (Python's json lets one through)
        _check_numbers(v)  # ... unless it was a number: that rule's message first
        raise ValueError("must be valid Unicode text (no lone surrogate)") from None
    if b"null" in text:
        _check_numbers(v)
    size = len(text)
    if size > MAX_DATA_BYTES:
        raise ValueError(f"data is larger than {MAX_DATA_BYTES} bytes as JSON")
    return v


def check_url(v: str | None) -> str | None:
    """An absolute http(s) URL with a host: never ``//host`` (which browsers read as
    another site), ``javascript:``, a bare path, or text with spaces or controls."""
    if v is None:
        return v
    parts = urlsplit(v) if v.isprintable() and not any(c.isspace() for c in v) else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an absolute http:// or https:// URL")
    return v


UserName = Field(min_length=1, max_length=200)


class PublishIn(RequestBody):
    recipients: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_RECIPIENTS,
        description="required unless 'escalation' names a policy (then extra step-1 targets)")
    type: Name = Field(min_length=1, max_length=100)
    title: Text = Field(min_length=1, max_length=200)
    body: Text = ""
    priority: Priority = "medium"
    group_key: Name | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=2048)
    actor: Name | None = Field(default=None, max_length=200)
    source: Name | None = Field(default=None, max_length=200)
    data: dict[str, Any] | None = None
    ttl: int | None = Field(default=None, gt=0, le=366 * 24 * 3600, description="seconds")
    idempotency_key: Name | None = Field(default=None, min_length=1, max_length=200)
    escalation: Name | None = Field(
        default=None, min_length=1, max_length=100,
        description="an escalation policy: opens an incident (reply carries 'incident')")

    _body = field_validator("body")(check_body)
    _data = field_validator("data")(check_data)
    _url = field_validator("url")(check_url)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: list[str] | None) -> list[str] | None:
        for r in v or ():
            if not r or len(r) > 200:
                raise ValueError("each recipient must be a user id of 1 to 200 characters")
        return check_names(v)


class PublishOut(BaseModel):
    ids: dict[str, str] = Field(description="recipient -> notification id")
    incident: str | None = Field(default=None, description="with 'escalation': the incident")


class TopicEventIn(RequestBody):
    type: Name = Field(min_length=1, max_length=100)
    title: Text = Field(min_length=1, max_length=200)
    body: Text = ""
    actor: Name | None = Field(default=None, max_length=200)
    data: dict[str, Any] | None = None

    _body = field_validator("body")(check_body)
    _data = field_validator("data")(check_data)


class ReadIn(RequestBody):
    read: bool


class ReadAllIn(RequestBody):
    type: Name | None = Field(default=None, max_length=100)
    before: str | None = Field(default=None, description="event id cursor (exclusive)")


class TokenIn(RequestBody):
    user: Name = UserName
    topics: list[Name] | None = None
    ttl: int = Field(default=3600, gt=0, le=30 * 24 * 3600, description="seconds")


class TokenOut(BaseModel):
    token: str
    expires_at: int = Field(serialization_alias="expiresAt")


class IncidentAck(BaseModel):
    by: str
    at: int


class Notification(BaseModel):
    """A notification as the browser sees it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    id: str
    type: str
    title: str
    body: str
    priority: Priority
    timestamp: int
    read: bool
    read_at: int | None = None
    group_key: str | None = None
    url: str | None = None
    actor: str | None = None
    source: str | None = None
    data: dict[str, Any] | None = None
    expires_at: int | None = None
    event_id: str
    acked: IncidentAck | None = Field(
        default=None, description="an incident's notification, once someone acknowledged it")
    snoozed_until: int | None = Field(
        default=None, description="in a listing with snoozed=true: when it comes back")


class NotificationPage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    items: list[Notification]
    unread_count: int
    next_cursor: str | None
    last_event_id: str


class TopicEvent(BaseModel):
    id: str
    topic: str
    type: str
    title: str
    body: str
    actor: str | None = None
    data: dict[str, Any] | None = None
    timestamp: int


class TopicPage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    items: list[TopicEvent]
    next_cursor: str | None
    last_event_id: str

