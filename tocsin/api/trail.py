"""The delivery trail (publisher): what happened to a notification, per recipient
(docs/trail.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from tocsin.api.deps import PublisherCaller, Service, json_response
from tocsin.api.notifications import NotificationId
from tocsin.errors import TocsinError
from tocsin.routing import ERRORS
from tocsin.text import Name

router = APIRouter(tags=["trail"])

MAX_EPOCH_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: a ``since`` past it is a 400, not a bigint overflow (500) on
PostgreSQL."""


@router.get("/api/notifications/{id}/trail", responses=ERRORS)
async def notification_trail(id: NotificationId, _: PublisherCaller,
                             tocsin: Service) -> Response:
    """One notification's journey (its recipient's steps in time order)."""
    return json_response(await tocsin.trail.of_notification(id))


@router.get("/api/trail", responses=ERRORS)
async def trail(_: PublisherCaller, tocsin: Service,
                idempotency_key: Annotated[Name | None, Query(
                    alias="idempotencyKey", max_length=200,
                    description="the notifications a publish with this key created")] = None,
                user: Annotated[Name | None, Query(max_length=200)] = None,
                since: Annotated[int | None, Query(
                    ge=0, le=MAX_EPOCH_MS,
                    description="ms since the epoch (default: the last 24 h)")] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
    """The notifications a publish created (``idempotencyKey``) or a user's since a
    time (``user``, ``since``), each with its trail."""
    if (idempotency_key is None) == (user is None):
        raise TocsinError("invalid_field", "Give either idempotencyKey or user.",
                          "idempotencyKey")
    if idempotency_key is not None:
        return json_response(await tocsin.trail.of_key(idempotency_key))
    assert user is not None
    return json_response(await tocsin.trail.of_user(user, since, limit))
