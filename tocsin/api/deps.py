"""Request dependencies for the FastAPI routes: the service object, and the caller
the gate (``gate.py``) already authenticated."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
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
from tocsin.ids import Position, parse_position
from tocsin.ratelimit.limits import Limits
from tocsin.service import Tocsin

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


async def get_tocsin(request: Request) -> Tocsin:
    service: Tocsin = request.app.state.tocsin
    return service


async def principal(request: Request, _: SubscriberCredentials) -> Principal:
    who: Principal | None = request.scope.get(PRINCIPAL_KEY)
    if who is None:  # only if the framework app is served without the gate
        raise TocsinError("unauthorized", "Missing credentials.")
    return who


async def publisher(who: Annotated[Principal, Depends(principal)]) -> Publisher:
    return require_publisher(who)


async def subscriber(who: Annotated[Principal, Depends(principal)]) -> Subscriber:
    return require_subscriber(who)


async def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


Service = Annotated[Tocsin, Depends(get_tocsin)]
RateLimits = Annotated[Limits, Depends(get_limits)]
"""The gate's buckets: a route charges the work a request made (``Limits.charge``)."""
AnyCaller = Annotated[Principal, Depends(principal)]
PublisherCaller = Annotated[Publisher, Depends(publisher)]
SubscriberCaller = Annotated[Subscriber, Depends(subscriber)]


def json_response(obj: object, status: int = 200) -> Response:
    # orjson straight to bytes: replies here are built from stored JSON, nothing to validate.
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def parse_cursor(raw: str | None, field: str) -> Position | None:
    """A cursor or event id this server issued (the store checks its epoch)."""
    if raw is None or raw == "":
        return None
    try:
        return parse_position(raw)
    except ValueError:
        raise TocsinError("bad_cursor", f"'{field}' is not a cursor this server issued.",
                          field) from None
