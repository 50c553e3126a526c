"""What every route needs, below the ``api`` package so the channels' routes can use
it too: the caller the gate (``api/gate.py``) already authenticated, as FastAPI
dependencies; the documented error replies; and the JSON response."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.responses import Response

from tocsin.asgi import PRINCIPAL_KEY
from tocsin.auth import (
    COOKIE_NAME,
    Principal,
    Publisher,
    Subscriber,
    require_publisher,
    require_subscriber,
)
from tocsin.errors import TocsinError

# Declared for OpenAPI (the "Authorize" button in /docs); the gate does the parsing.
bearer = HTTPBearer(auto_error=False,
                    description="API key (publisher; only here) or JWT (subscriber)")
cookie = APIKeyCookie(name=COOKIE_NAME, auto_error=False, description="subscriber JWT")
query = APIKeyQuery(name="token", auto_error=False,
                    description="subscriber JWT (EventSource cannot send headers)")


async def subscriber_credentials(
    _b: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _c: Annotated[str | None, Depends(cookie)],
    _q: Annotated[str | None, Depends(query)],
) -> None:
    """Documents where a subscriber token may come from."""


SubscriberCredentials = Annotated[None, Depends(subscriber_credentials)]


async def principal(request: Request, _: SubscriberCredentials) -> Principal:
    who: Principal | None = request.scope.get(PRINCIPAL_KEY)
    if who is None:  # only if the framework app is served without the gate
        raise TocsinError("unauthorized", "Missing credentials.")
    return who


async def publisher(who: Annotated[Principal, Depends(principal)]) -> Publisher:
    return require_publisher(who)


async def subscriber(who: Annotated[Principal, Depends(principal)]) -> Subscriber:
    return require_subscriber(who)


AnyCaller = Annotated[Principal, Depends(principal)]
PublisherCaller = Annotated[Publisher, Depends(publisher)]
SubscriberCaller = Annotated[Subscriber, Depends(subscriber)]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 415, 503)
}
"""The error replies a route documents (``responses=ERRORS``)."""


def json_response(obj: object, status: int = 200) -> Response:
    # orjson straight to bytes: replies here are built from stored JSON, nothing to validate.
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")
