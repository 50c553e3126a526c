"""The application as every server runs it: ``create_app`` assembles the gate, the
hot routes and the FastAPI routes, so ``tocsin serve``, ``tocsin.create_app()`` under
any ASGI server, and the tests all run the same code.

    Gate (api/gate.py)          CORS, credentials, CSRF, body rules — for every request
     ├─ HotRoutes (api/hot_routes.py)   POST /api/notifications, the two streams
     └─ FastAPI                 every other route, OpenAPI (/openapi.json, /docs), static
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tocsin._version import __version__
from tocsin.api import health, notifications, openapi, tokens, topics
from tocsin.api.cors import CorsPolicy
from tocsin.api.deps import json_response
from tocsin.api.gate import Gate
from tocsin.api.hot_routes import HotRoutes
from tocsin.api.validation import error_from_validation
from tocsin.auth import Authenticator
from tocsin.config import Settings
from tocsin.errors import TocsinError
from tocsin.service import Tocsin

log = logging.getLogger("tocsin")
WEB_DIR = Path(__file__).parent / "web"

StartHook = Callable[[FastAPI], Awaitable[None]]
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
              403: "forbidden", 413: "payload_too_large", 415: "unsupported_media_type"}


def create_app(settings: Settings, service: Tocsin | None = None) -> Gate:
    """The whole application as one ASGI app (``.fastapi`` is the framework part,
    ``.state`` its state: ``settings``, ``tocsin``, ``auth``)."""
    tocsin = service or Tocsin(settings)
    app = _framework(settings, tocsin)
    auth = Authenticator(settings.api_keys, settings.jwt_secret)
    app.state.auth = auth
    return Gate(app, auth, HotRoutes(tocsin, settings), CorsPolicy(settings.cors_origins))


def _framework(settings: Settings, tocsin: Tocsin) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await tocsin.start()
        for hook in app.state.on_start:
            await hook(app)
        try:
            yield
        finally:
            for task in app.state.tasks:
                task.cancel()
            await tocsin.stop()

    app = FastAPI(
        title="Tocsin",
        version=__version__,
        summary="Real-time notifications: durable inboxes and topic feeds over SSE.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tocsin = tocsin
    app.state.on_start = []
    app.state.tasks = []

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

    for module in (notifications, topics, tokens, health):
        app.include_router(module.router)
    openapi.install(app)

    static = WEB_DIR / "static"
    static.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=static), name="static")
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
