"""The unsubscribe link of emails (docs/email.md). Users' addresses are the ``email``
field of ``/api/users/{user}`` (``tocsin/channels/users.py``; ``EmailChannel`` keeps it).

``/api/email/unsubscribe`` takes no credential: the signed token in its URL is the
credential (``links.py``), and the gate lets it through unauthenticated,
with a form-encoded body for RFC 8058's one-click POST (``api/gate.py``)."""

from __future__ import annotations

import html
from typing import Annotated, Protocol
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from tocsin.channels.email.links import UNSUBSCRIBE_PATH, verify_unsubscribe
from tocsin.errors import TocsinError
from tocsin.routing import ERRORS, json_response


class _Secret(Protocol):
    @property
    def jwt_secret(self) -> str: ...


class EmailApi(Protocol):
    """What the routes call (``EmailChannel``)."""

    @property
    def settings(self) -> _Secret: ...

    async def unsubscribe(self, user: str, types: list[str]) -> list[str]: ...

TokenQuery = Annotated[str | None, Query(max_length=4096,
                                         description="the signed token of the link")]
# The page is static text: no script, style inline only, nothing loaded.
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title></head>"
            '<body style="font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;'
            f'padding:0 1em;color:#222"><h1 style="font-size:1.4em">{html.escape(title)}</h1>'
            f"<p>{html.escape(text)}</p></body></html>")
    return HTMLResponse(body, status, headers={"content-security-policy": PAGE_CSP,
                                               "cache-control": "no-store",
                                               "referrer-policy": "no-referrer"})


def _turned_off(types: list[str]) -> str:
    names = ", ".join(f"\u201c{t}\u201d" for t in types)
    return (f"You will no longer get emails for {names} notifications. Your other "
            "notification settings are unchanged.")


def routes(email: EmailApi) -> APIRouter:
    """The channel's routes, bound to ``email``."""
    router = APIRouter(tags=["email"])

    @router.get(UNSUBSCRIBE_PATH, response_class=HTMLResponse,
                responses={200: {"content": {"text/html": {}}},
                           400: {"content": {"text/html": {}}},
                           401: {"content": {"text/html": {}}}})
    async def unsubscribe_page(token: TokenQuery = None) -> Response:
        """The unsubscribe link of an email: turns email off for its notification type(s)
        and says so (idempotent: a second click says the same)."""
        try:
            user, types = verify_unsubscribe(email.settings.jwt_secret, token)
            await email.unsubscribe(user, types)
        except TocsinError as err:
            return _page("This link does not work", err.message, err.status)
        return _page("Unsubscribed", _turned_off(types))

    @router.post(UNSUBSCRIBE_PATH, responses=ERRORS, openapi_extra={"requestBody": {
        "required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": {"List-Unsubscribe": {"type": "string",
                                                                  "enum": ["One-Click"]}},
            "required": ["List-Unsubscribe"]}}}}})
    async def unsubscribe_one_click(request: Request,
                                    token: TokenQuery = None) -> Response:
        """RFC 8058 one-click unsubscribe: a mail client POSTs
        ``List-Unsubscribe=One-Click`` (form-encoded) to the ``List-Unsubscribe`` URL."""
        user, types = verify_unsubscribe(email.settings.jwt_secret, token)
        raw = await request.body()  # bounded by the gate
        try:
            form = parse_qs(raw.decode("utf-8"), max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            form = {}
        if form.get("List-Unsubscribe") != ["One-Click"]:
            raise TocsinError("invalid_field", "The body must be the form field "
                              "'List-Unsubscribe=One-Click' (RFC 8058).", "List-Unsubscribe")
        await email.unsubscribe(user, types)
        return json_response({"unsubscribed": types})

    return router
