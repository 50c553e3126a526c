"""Subscriber tokens, minted for an app's backend to hand to its frontend."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tocsin.api.deps import PublisherCaller, json_response
from tocsin.api.models import TokenIn, TokenOut
from tocsin.auth import mint_token
from tocsin.routing import ERRORS

router = APIRouter(prefix="/api/tokens", tags=["auth"])


@router.post("", response_model=TokenOut, status_code=201, responses=ERRORS)
async def create_token(body: TokenIn, _: PublisherCaller, request: Request) -> Response:
    """A JWT for ``user`` (``sub``) that may read ``topics`` (patterns like ``team:*``)."""
    token, expires_at = mint_token(request.app.state.settings.jwt_secret, body.user,
                                   body.topics, body.ttl)
    return json_response({"token": token, "expiresAt": expires_at}, 201)
