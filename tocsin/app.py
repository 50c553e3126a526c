"""The ASGI application: routes, error replies, static client, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from tocsin._version import __version__
from tocsin.api import health, notifications, tokens, topics
from tocsin.api.deps import json_response
from tocsin.api.frontend import MAX_BODY_BYTES, Frontend
from tocsin.api.validation import error_from_validation
from tocsin.auth import Authenticator
from tocsin.config import Settings
from tocsin.errors import TocsinError
from tocsin.service import Tocsin

log = logging.getLogger("tocsin")
WEB_DIR = Path(__file__).parent / "web"

StartHook = Callable[[FastAPI], Awaitable[None]]


def create_app(settings: Settings, service: Tocsin | None = None) -> FastAPI:
    tocsin = service or Tocsin(settings)

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
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.settings = settings
    app.state.tocsin = tocsin
    app.state.auth = Authenticator(settings.api_keys, settings.jwt_secret)
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
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                403: "forbidden", 413: "payload_too_large"}.get(exc.status_code, "invalid_field")
        body = {"error": {"code": code, "message": str(exc.detail)}}
        return json_response(body, exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return json_response(TocsinError("internal").body(), 500)

    for module in (notifications, topics, tokens, health):
        app.include_router(module.router)

    static = WEB_DIR / "static"
    static.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=static), name="static")

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
            allow_methods=["*"], allow_headers=["*"], expose_headers=["*"],
        )
    if settings.demo:
        from tocsin import demo

        demo.install(app)
    return app


def with_frontend(app: FastAPI) -> ASGIApp:
    """Wrap ``app`` so the hot routes are served by the lean ASGI frontend."""
    return Frontend(app, app.state.tocsin, app.state.auth, app.state.settings)


def app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory tocsin.app:app_from_env`` (settings from ``TOCSIN_*``)."""
    from pydantic import ValidationError

    from tocsin.config import describe_error

    try:
        settings = Settings()
    except ValidationError as exc:
        raise SystemExit(f"tocsin: error: {describe_error(exc)}") from None
    return with_frontend(create_app(settings))
