"""Request dependencies: the service object, credentials, and who may call what."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from tocsin.auth import COOKIE_NAME, Authenticator, Principal, Publisher, Subscriber
from tocsin.errors import TocsinError
from tocsin.service import Tocsin

# Declared for OpenAPI (the "Authorize" button in /docs); parsing is ours.
_bearer = HTTPBearer(auto_error=False, description="API key (publisher) or JWT (subscriber)")
_cookie = APIKeyCookie(name=COOKIE_NAME, auto_error=False, description="subscriber JWT")
_query = APIKeyQuery(name="token", auto_error=False, description="subscriber JWT (EventSource)")


async def get_tocsin(request: Request) -> Tocsin:
    service: Tocsin = request.app.state.tocsin
    return service


async def principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
    query: Annotated[str | None, Depends(_query)],
) -> Principal:
    credential = bearer.credentials if bearer is not None else (cookie or query)
    auth: Authenticator = request.app.state.auth
    return auth.authenticate(credential)


async def publisher(who: Annotated[Principal, Depends(principal)]) -> Publisher:
    if not isinstance(who, Publisher):
        raise TocsinError("forbidden", "This route needs a publisher API key, not a user token.")
    return who


async def subscriber(who: Annotated[Principal, Depends(principal)]) -> Subscriber:
    if not isinstance(who, Subscriber):
        raise TocsinError("forbidden", "This route needs a user token, not a publisher API key.")
    return who


Service = Annotated[Tocsin, Depends(get_tocsin)]
AnyCaller = Annotated[Principal, Depends(principal)]
PublisherCaller = Annotated[Publisher, Depends(publisher)]
SubscriberCaller = Annotated[Subscriber, Depends(subscriber)]


def json_response(obj: object, status: int = 200) -> Response:
    # orjson straight to bytes: replies here are built from stored JSON, nothing to validate.
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


def parse_cursor(raw: str | None, field: str) -> int | None:
    """Cursors and event ids are the decimal seqs this server issued."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise TocsinError("bad_cursor", f"'{field}' is not a cursor this server issued.", field)
    return int(raw)
