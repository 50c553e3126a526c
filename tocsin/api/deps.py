"""Request dependencies for the FastAPI routes: the service object and the rate
limits; the caller the gate (``gate.py``) already authenticated and the JSON reply
come from ``tocsin/routing.py`` (below the channels, whose routes use them too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tocsin.errors import TocsinError
from tocsin.ids import Position, parse_position
from tocsin.ratelimit.limits import Limits
from tocsin.routing import (
    AnyCaller,
    PublisherCaller,
    SubscriberCaller,
    SubscriberCredentials,
    bearer,
    json_response,
)
from tocsin.service import Tocsin

__all__ = [  # the caller and the reply live in tocsin.routing; re-exported for api/
    "AnyCaller", "PublisherCaller", "RateLimits", "Service", "SubscriberCaller",
    "SubscriberCredentials", "bearer", "json_response", "parse_cursor",
]


async def get_tocsin(request: Request) -> Tocsin:
    service: Tocsin = request.app.state.tocsin
    return service


async def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


Service = Annotated[Tocsin, Depends(get_tocsin)]
RateLimits = Annotated[Limits, Depends(get_limits)]
"""The gate's buckets: a route charges the work a request made (``Limits.charge``)."""


def parse_cursor(raw: str | None, field: str) -> Position | None:
    """A cursor or event id this server issued (the store checks its epoch)."""
    if raw is None or raw == "":
        return None
    try:
        return parse_position(raw)
    except ValueError:
        raise TocsinError("bad_cursor", f"'{field}' is not a cursor this server issued.",
                          field) from None
