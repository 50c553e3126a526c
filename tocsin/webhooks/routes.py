"""``/api/event-webhooks``: the publisher's subscriptions (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tocsin.routing import ERRORS, PublisherCaller, json_response
from tocsin.text import Name


class EventWebhooksApi(Protocol):
    """What the routes call (``EventWebhooks``)."""

    async def put(self, name: str, raw: object) -> tuple[dict[str, Any], bool]: ...

    async def get(self, name: str) -> dict[str, Any]: ...

    async def all(self) -> list[dict[str, Any]]: ...

    async def delete(self, name: str) -> None: ...

    async def failures(self, name: str) -> list[dict[str, Any]]: ...


NamePath = Annotated[Name, Path(min_length=1, max_length=100,
                                description="the subscription's name")]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="where events are POSTed (https://)")
    events: list[str] = Field(min_length=1, description="the event types wanted")
    secret: str | None = Field(None, description="whsec_<base64>; generated (and returned "
                                                 "once) when absent")


class SubscriptionOut(BaseModel):
    name: str
    url: str
    events: list[str]
    paused: bool
    consecutiveFailures: int
    lastError: str | None
    createdAt: int
    updatedAt: int
    secret: str | None = Field(None, description="only in the reply of a PUT that "
                                                 "generated it")


class FailureOut(BaseModel):
    id: str
    type: str
    at: int
    attempts: int
    reason: str


class FailuresOut(BaseModel):
    failures: list[FailureOut]


def routes(hooks: EventWebhooksApi) -> APIRouter:
    router = APIRouter(tags=["event webhooks"])
    body_doc = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": SubscriptionIn.model_json_schema()}}}}

    @router.get("/api/event-webhooks", responses=ERRORS)
    async def list_subscriptions(_: PublisherCaller) -> Response:
        """Every event webhook subscription."""
        return json_response({"webhooks": await hooks.all()})

    @router.put("/api/event-webhooks/{name}", response_model=SubscriptionOut,
                responses=ERRORS, openapi_extra=body_doc)
    async def put_subscription(name: NamePath, _: PublisherCaller,
                               body: Annotated[Any, Body()] = None) -> Response:
        """Create or replace a subscription; a paused one is resumed."""
        out, created = await hooks.put(name, body)
        return json_response(out, 201 if created else 200)

    @router.get("/api/event-webhooks/{name}", response_model=SubscriptionOut,
                responses=ERRORS)
    async def get_subscription(name: NamePath, _: PublisherCaller) -> Response:
        """A subscription and its state (paused, failed attempts in a row, last error)."""
        return json_response(await hooks.get(name))

    @router.delete("/api/event-webhooks/{name}", status_code=204, responses=ERRORS)
    async def delete_subscription(name: NamePath, _: PublisherCaller) -> Response:
        """Delete a subscription and its pending deliveries."""
        await hooks.delete(name)
        return Response(status_code=204)

    @router.get("/api/event-webhooks/{name}/failures", response_model=FailuresOut,
                responses=ERRORS)
    async def failures(name: NamePath, _: PublisherCaller) -> Response:
        """The last deliveries given up (newest first)."""
        return json_response({"failures": await hooks.failures(name)})

    return router
