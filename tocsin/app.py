"""The application as every server runs it: ``create_app`` assembles the gate, the
hot routes and the FastAPI routes, so ``tocsin serve``, ``tocsin.create_app()`` under
any ASGI server, and the tests all run the same code.

    Gate (api/gate.py)          CORS, credentials, CSRF, body rules — for every request
     ├─ HotRoutes (api/hot_routes.py)   POST /api/notifications, the two streams
     └─ FastAPI                 every other route, OpenAPI (/openapi.json, /docs), static
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tocsin._version import __version__
from tocsin.api import (
    escalation,
    health,
    lifecycle,
    notifications,
    openapi,
    presence,
    tokens,
    topics,
    trail,
)
from tocsin.api import preferences as preferences_api
from tocsin.api.cors import CorsPolicy
from tocsin.api.deps import json_response
from tocsin.api.gate import Gate
from tocsin.api.hot_routes import HotRoutes
from tocsin.auth import Authenticator
from tocsin.channels.users import users_router
from tocsin.config import Settings
from tocsin.errors import TocsinError
from tocsin.ratelimit.limits import Limits
from tocsin.service import Tocsin
from tocsin.validation import error_from_validation
from tocsin.webhooks.routes import routes as event_webhook_routes

log = logging.getLogger("tocsin")
WEB_DIR = Path(__file__).parent / "web"

StartHook = Callable[[FastAPI], Awaitable[None]]
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
              403: "forbidden", 413: "payload_too_large", 415: "unsupported_media_type"}


# Content-Security-Policy by path. The demo page and the components (shadow-DOM
# <style> elements) need inline styles; nothing needs inline scripts or other
# origins. /docs and /redoc load their viewers from this server (DOCS_ASSETS, pinned
# by the fastapi-offline package: nothing from a CDN, so they work on an air-gapped
# network); each page has one inline script that starts its viewer.
_SELF_ONLY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
              "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_DOCS = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
         "style-src 'self' 'unsafe-inline'; font-src 'self'; worker-src 'self' blob:; "
         "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
         "frame-ancestors 'none'")
DOCS_ASSETS = "/docs/assets"
"""Swagger UI and ReDoc files (``fastapi_offline``'s; the versions it ships are the
versions served: swagger-ui 5.32.6 and redoc 2.5.3 with fastapi-offline 1.7.7)."""
CSP_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("/static/", _SELF_ONLY), ("/demo/", _SELF_ONLY), ("/docs", _DOCS), ("/redoc", _DOCS),
    ("/console", _SELF_ONLY),
)
NOSNIFF = (b"x-content-type-options", b"nosniff")


def content_security_policy(path: str, demo: bool) -> str | None:
    """The CSP sent with a framework reply for ``path`` (``None``: none)."""
    if demo and path == "/":
        return _SELF_ONLY
    for prefix, policy in CSP_BY_PREFIX:
        if path.startswith(prefix):
            return policy
    return None


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` on every framework reply, and a
    Content-Security-Policy on the pages and files a browser may open (static files,
    the demo page, /docs)."""

    def __init__(self, app: ASGIApp, demo: bool) -> None:
        self.app, self.demo = app, demo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [NOSNIFF]
        csp = content_security_policy(scope["path"], self.demo)
        if csp is not None:
            extra.append((b"content-security-policy", csp.encode()))

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with)


def create_app(settings: Settings, service: Tocsin | None = None) -> Gate:
    """The whole application as one ASGI app (``.fastapi`` is the framework part,
    ``.state`` its state: ``settings``, ``tocsin``, ``auth``)."""
    tocsin = service or Tocsin(settings)
    app = _framework(settings, tocsin)
    auth = Authenticator(settings.api_keys, settings.jwt_secret)
    app.state.auth = auth
    # one set of buckets: the gate admits, the routes charge what a request made
    limits = app.state.limits = Limits.from_settings(settings,
                                                     tocsin.metrics.ratelimit_errors.inc)
    return Gate(app, auth, HotRoutes(tocsin, settings, limits),
                CorsPolicy(settings.cors_origins), limits)


def freeze_startup_heap() -> None:
    """Move what start-up made (modules, routers, validators, the schemas, the database
    engine: ~150k objects that live as long as the process) out of the cyclic
    collector's generations (``gc.freeze``, as Python's gc docs suggest for servers), its
    garbage collected first, so the full collections a busy node triggers walk only what
    was made since (the streams), which they can free.

    Measured (a 10k reconnect storm, ``python -m bench.profile --what storm`` with a
    ``gc.callbacks`` probe): before it, 9 full collections took 5.7 s of the server's CPU,
    each ~0.6 s with the event loop stopped, accepting nothing. Once per process: an app
    started again in the same process (the in-process tests) would otherwise freeze, for
    good, what the earlier ones left."""
    if not gc.get_freeze_count():
        gc.collect()
        gc.freeze()


def _framework(settings: Settings, tocsin: Tocsin) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await tocsin.start()
        for hook in app.state.on_start:
            await hook(app)
        freeze_startup_heap()
        try:
            yield
        finally:
            for task in app.state.tasks:
                task.cancel()
            await tocsin.stop()

    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="Tocsin",
        version=__version__,
        summary="Real-time notifications: durable inboxes and topic feeds over SSE.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tocsin = tocsin
    app.state.on_start = []
    app.state.tasks = []
    app.state.worker_metrics = None  # (directory, index) under --workers: server.py

    @app.exception_handler(TocsinError)
    async def tocsin_error(_: Request, exc: TocsinError) -> Response:
        return json_response(exc.body(), exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        err = error_from_validation(exc.errors())
        return json_response(err.body(), err.status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "invalid_field")
        body = {"error": {"code": code, "message": str(exc.detail)}}
        return json_response(body, exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return json_response(TocsinError("internal").body(), 500)

    for module in (escalation, lifecycle, notifications, topics, presence, tokens, health,
                   trail):
        app.include_router(module.router)
    app.include_router(preferences_api.router)
    users = users_router(tocsin.channels)  # /api/users/{user}: the channels' user fields
    if users is not None:
        app.include_router(users)
    for channel in tocsin.channels:  # push devices, email unsubscribe, webhook targets
        router = channel.router()
        if router is not None:
            app.include_router(router)
    app.include_router(event_webhook_routes(tocsin.event_webhooks))
    openapi.install(app)
    app.add_middleware(SecurityHeaders, demo=settings.demo)

    static = WEB_DIR / "static"
    static.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=static), name="static")
    if settings.console:  # the operators' page and its routes (docs/console.md)
        from tocsin.api import console

        console.install(app, tocsin)
    if settings.demo:
        from tocsin import demo

        demo.install(app)
    return app


def app_from_env() -> Gate:
    """Factory for ``uvicorn --factory tocsin.app:app_from_env`` (settings from ``TOCSIN_*``)."""
    from pydantic import ValidationError

    from tocsin.config import describe_error

    try:
        settings = Settings()
    except ValidationError as exc:
        raise SystemExit(f"tocsin: error: {describe_error(exc)}") from None
    return create_app(settings)
