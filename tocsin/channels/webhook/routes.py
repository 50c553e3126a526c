"""The webhook channel's routes (publisher only): named targets
(``/api/webhook-targets/{name}``). A user's own target is the ``webhook`` field of
``/api/users/{user}`` (``tocsin/channels/users.py``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tocsin.routing import ERRORS, PublisherCaller, json_response
from tocsin.text import Name


class WebhookApi(Protocol):
    """What the routes call (``WebhookChannel``)."""

    async def put_target(self, name: str, raw: object) -> dict[str, Any]: ...

    async def get_target(self, name: str) -> dict[str, Any]: ...

    async def delete_target(self, name: str) -> dict[str, Any]: ...



NamePath = Annotated[Name, Path(min_length=1, max_length=100, description="target name")]


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="where to POST (https://, public)")
    format: Literal["slack", "discord", "teams", "generic"]
    secret: str | None = Field(None, description="whsec_<base64>: sign every request "
                               "per Standard Webhooks")


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


def routes(hooks: WebhookApi) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.put("/api/webhook-targets/{name}", responses=ERRORS, openapi_extra=_body(TargetIn))
    async def put_target(name: NamePath, _: PublisherCaller,
                         body: Annotated[Any, Body()] = None) -> Response:
        """Create or replace a named target (escalation steps post to it)."""
        return json_response(await hooks.put_target(name, body))

    @router.get("/api/webhook-targets/{name}", responses=ERRORS)
    async def get_target(name: NamePath, _: PublisherCaller) -> Response:
        """The target (its secret is not shown: ``signed`` says whether it has one)."""
        return json_response(await hooks.get_target(name))

    @router.delete("/api/webhook-targets/{name}", responses=ERRORS)
    async def delete_target(name: NamePath, _: PublisherCaller) -> Response:
        return json_response(await hooks.delete_target(name))

    return router
