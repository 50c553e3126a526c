"""The ASGI application: routes, error replies, static client, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

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
from tocsin.auth import Authenticator
from tocsin.config import Settings
from tocsin.errors import TocsinError
from tocsin.service import Tocsin
from tocsin.streams.frontend import MAX_BODY_BYTES, StreamFrontend

log = logging.getLogger("tocsin")
WEB_DIR = Path(__file__).parent / "web"

StartHook = Callable[[FastAPI], Awaitable[None]]


def _validation_error(exc: RequestValidationError) -> TocsinError:
    """Map pydantic's first error to one code from the table, naming the field."""
    err: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    kind = str(err.get("type", ""))
    loc = [str(p) for p in err.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]  # where it came from; the rest names the field
    field = ".".join(loc) or None
    msg = str(err.get("msg", "invalid request"))
    if kind == "json_invalid" or (kind == "model_attributes_type" and not loc):
        return TocsinError("malformed_json", "The request body is not valid JSON: " + msg)
    if kind == "missing":
        return TocsinError("missing_field", f"'{field}' is required.", field)
    if field == "recipients" and kind == "too_long":
        return TocsinError("too_many_recipients", field=field)
    if kind in ("string_too_long", "too_long"):
        return TocsinError("too_long", f"'{field}': {msg}.", field)
    if "larger than" in msg:
        return TocsinError("too_large", f"'{field}': {msg.removeprefix('Value error, ')}.", field)
    return TocsinError("invalid_field", f"'{field}': {msg}.", field)


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
        err = _validation_error(exc)
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


def with_stream_frontend(app: FastAPI) -> ASGIApp:
    """Wrap ``app`` so the stream routes are served by the lean ASGI frontend."""
    return StreamFrontend(app, app.state.tocsin, app.state.auth, app.state.settings)


def app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory tocsin.app:app_from_env`` (settings from ``TOCSIN_*``)."""
    return with_stream_frontend(create_app(Settings.from_env()))
