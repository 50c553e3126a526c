"""The routes of the lifecycle feature (``tocsin/lifecycle/``): snooze (subscriber)
and the publisher's update/retract by idempotency key (``docs/grouping.md``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import Field, field_validator, model_validator
from starlette.responses import Response

from tocsin.api.deps import (
    PublisherCaller,
    RateLimits,
    Service,
    SubscriberCaller,
    json_response,
)
from tocsin.api.models import Priority, RequestBody, check_body, check_data, check_url
from tocsin.api.notifications import ERRORS, NotificationId
from tocsin.errors import TocsinError
from tocsin.store.plan import dumps
from tocsin.text import Name, Text

router = APIRouter(tags=["notifications"])
Key = Annotated[Name, Path(description="the idempotencyKey the notification was published with")]


class SnoozeIn(RequestBody):
    until: int = Field(description="when it comes back: ms since the epoch, in the future")


class UpdateIn(RequestBody):
    title: Text | None = Field(default=None, min_length=1, max_length=200)
    body: Text | None = None
    priority: Priority | None = None
    url: str | None = Field(default=None, max_length=2048)
    data: dict[str, Any] | None = None

    @field_validator("body")
    @classmethod
    def _body(cls, v: str | None) -> str | None:
        return None if v is None else check_body(v)

    _data = field_validator("data")(check_data)
    _url = field_validator("url")(check_url)

    @model_validator(mode="after")
    def _something(self) -> UpdateIn:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, body, priority, url, data")
        return self


@router.post("/api/notifications/{id}/snooze", responses=ERRORS)
async def snooze(id: NotificationId, body: SnoozeIn, caller: SubscriberCaller, tocsin: Service
                 ) -> Response:
    """Hide the notification from the inbox on every device until ``until`` (a
    ``snoozed`` event); it comes back unread then (a ``notification`` event)."""
    change = await tocsin.lifecycle.snooze(caller.user, id, body.until) if len(id) <= 32 \
        else None
    if change is None:
        raise TocsinError("not_found", "No such notification.")
    return json_response({"ids": change.ids, "until": body.until,
                          "unreadCount": change.unread_count})


@router.delete("/api/notifications/{id}/snooze", responses=ERRORS)
async def unsnooze(id: NotificationId, caller: SubscriberCaller, tocsin: Service) -> Response:
    """Bring a snoozed notification back now (undo): unread, a ``notification`` event
    on every device, as when its time comes. 404 if not the caller's or not snoozed."""
    if len(id) > 32 or not await tocsin.lifecycle.unsnooze(caller.user, id):
        raise TocsinError("not_found", "No such snoozed notification.")
    return json_response({"ids": [id]})


@router.patch("/api/notifications/by-key/{key:path}", responses=ERRORS)
async def update_by_key(key: Key, body: UpdateIn, caller: PublisherCaller, tocsin: Service,
                        limits: RateLimits) -> Response:
    """Update every recipient's copy (an ``updated`` event each, same id); each copy
    changed counts against ``--rate-publish``."""
    changes: dict[str, Any] = {}
    for field in body.model_fields_set:
        value = getattr(body, field)
        if field == "data":
            value = dumps(value) if value is not None else None
        elif value is None and field in ("title", "body", "priority"):
            raise TocsinError("invalid_field", f"'{field}' cannot be null.", field)
        changes[field] = value
    ids = await tocsin.lifecycle.update_by_key(caller.id, key, changes)
    await limits.charge(caller, len(ids) - 1)
    return json_response({"ids": ids})


@router.delete("/api/notifications/by-key/{key:path}", responses=ERRORS)
async def retract_by_key(key: Key, caller: PublisherCaller, tocsin: Service,
                         limits: RateLimits) -> Response:
    """Retract every recipient's copy (a ``deleted`` event each); replay never shows
    it again. Each copy retracted counts against ``--rate-publish``."""
    ids = await tocsin.lifecycle.retract_by_key(caller.id, key)
    await limits.charge(caller, len(ids) - 1)
    return json_response({"ids": ids})
