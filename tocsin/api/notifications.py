"""User inboxes: history and read state. (Publishing and the live stream are hot
routes: ``hot_routes.py``.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from starlette.responses import Response

from tocsin.api.deps import (
    Service,
    SubscriberCaller,
    json_response,
    parse_cursor,
)
from tocsin.api.models import (
    Notification,
    NotificationPage,
    Priority,
    ReadAllIn,
    ReadIn,
)
from tocsin.errors import TocsinError
from tocsin.routing import ERRORS
from tocsin.store.base import ListQuery
from tocsin.text import Name

router = APIRouter(prefix="/api/notifications", tags=["notifications"])
NotificationId = Annotated[Name, Path(description="a notification id")]


@router.get("", response_model=NotificationPage, responses=ERRORS)
async def list_notifications(
    caller: SubscriberCaller,
    tocsin: Service,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(description="cursor: nextCursor of a page")] = None,
    since: Annotated[str | None, Query(description="event id: what came after, oldest first")]
    = None,
    unread: bool = False,
    type: Name | None = None,
    priority: Priority | None = None,
    source: Name | None = None,
    snoozed: Annotated[bool, Query(description="only the snoozed notifications")] = False,
) -> Response:
    """The caller's inbox, newest first (oldest first with ``since``); with
    ``snoozed=true`` the notifications snoozed now instead, each with ``snoozedUntil``."""
    query = ListQuery(
        limit=limit, before=parse_cursor(before, "before"), since=parse_cursor(since, "since"),
        unread=unread, type=type, priority=priority, source=source, snoozed=snoozed,
    )
    page = await tocsin.store.list_notifications(caller.user, query)
    return json_response({
        "items": page.items, "unreadCount": page.unread_count,
        "nextCursor": page.next_cursor, "lastEventId": page.last_event_id,
    })


@router.get("/unread-count", responses=ERRORS)
async def unread_count(caller: SubscriberCaller, tocsin: Service) -> Response:
    return json_response({"unreadCount": await tocsin.store.unread_count(caller.user)})


@router.post("/read-all", responses=ERRORS)
async def read_all(
    caller: SubscriberCaller, tocsin: Service, body: Annotated[ReadAllIn | None, Body()] = None
) -> Response:
    """Mark every unread notification read (optionally only of ``type``, or before a cursor)."""
    body = body or ReadAllIn()
    change = await tocsin.read_all(caller.user, body.type, parse_cursor(body.before, "before"))
    return json_response({"ids": change.ids, "unreadCount": change.unread_count})


@router.get("/{id}", response_model=Notification, responses=ERRORS)
async def get_one(id: NotificationId, caller: SubscriberCaller, tocsin: Service) -> Response:
    note = await tocsin.store.get_notification(caller.user, id)
    if note is None:
        raise TocsinError("not_found", "No such notification.")
    return json_response(note)


@router.patch("/{id}", response_model=Notification, responses=ERRORS)
async def set_read(id: NotificationId, body: ReadIn, caller: SubscriberCaller,
                   tocsin: Service) -> Response:
    """Mark one notification read or unread; other tabs and devices get a read/unread event."""
    change = await tocsin.set_read(caller.user, [id], body.read)
    note = await tocsin.store.get_notification(caller.user, id) if change else None
    if note is None:
        raise TocsinError("not_found", "No such notification.")
    return json_response(note)


@router.delete("/{id}", status_code=200, responses=ERRORS)
async def dismiss(id: NotificationId, caller: SubscriberCaller, tocsin: Service) -> Response:
    """Remove a notification from the inbox."""
    change = await tocsin.dismiss(caller.user, id)
    if change is None:
        raise TocsinError("not_found", "No such notification.")
    return json_response({"ids": change.ids, "unreadCount": change.unread_count})
