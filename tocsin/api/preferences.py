"""Attention preferences (docs/attention.md): the subscriber's own, the publisher's
defaults per type, and the latest digest for a live-only client."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from starlette.responses import Response

from tocsin.api.deps import PublisherCaller, Service, SubscriberCaller, json_response
from tocsin.attention.model import STREAM_CHANNELS, Defaults, Preferences, with_channel_enum
from tocsin.channels.registry import CHANNELS
from tocsin.routing import ERRORS

router = APIRouter(tags=["attention"])


def _body(model: type[Preferences] | type[Defaults]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": with_channel_enum(
            model.model_json_schema(by_alias=True),
            STREAM_CHANNELS + tuple(spec.name for spec in CHANNELS))}}}}


@router.get("/api/preferences", responses=ERRORS)
async def get_preferences(caller: SubscriberCaller, tocsin: Service) -> Response:
    """The caller's preferences with defaults filled in, and the publisher's per-type
    ``defaults`` (read-only)."""
    return json_response(await tocsin.attention.get(caller.user))


@router.put("/api/preferences", responses=ERRORS, openapi_extra=_body(Preferences))
async def put_preferences(caller: SubscriberCaller, tocsin: Service,
                          body: Annotated[Any, Body()] = None) -> Response:
    """Replace the caller's preferences (the shape ``GET`` returns)."""
    return json_response(await tocsin.attention.put(caller.user, body))


@router.get("/api/preferences/digest", responses=ERRORS)
async def latest_digest(caller: SubscriberCaller, tocsin: Service) -> Response:
    """The latest ``digest`` event still in the caller's stream, or ``null``."""
    return json_response({"digest": await tocsin.attention.latest_digest(caller.user)})


@router.get("/api/preferences/defaults", responses=ERRORS)
async def get_defaults(_: PublisherCaller, tocsin: Service) -> Response:
    return json_response(await tocsin.attention.get_defaults())


@router.put("/api/preferences/defaults", responses=ERRORS, openapi_extra=_body(Defaults))
async def put_defaults(_: PublisherCaller, tocsin: Service,
                       body: Annotated[Any, Body()] = None) -> Response:
    """Replace the publisher defaults per type (a user's own choice overrides them)."""
    return json_response(await tocsin.attention.put_defaults(body))
