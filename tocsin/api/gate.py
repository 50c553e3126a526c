"""The gate: the outermost ASGI layer, and the one place where every request is
admitted — CORS, credentials, cross-site protection and body rules — before any
route (or the framework) runs.

Order, for every request:
1. CORS preflights are answered here (``cors.py``).
2. ``/api/`` routes: the caller is authenticated from the headers alone
   (``auth.find_credential``: one rule for every route). An unauthenticated request
   is refused before a byte of its body is read. (Except :data:`OPEN_PATHS`.)
   Steps 2-4 have their few exceptions in two tables: :data:`OPEN_PATHS`,
   :data:`OTHER_BODIES`.
3. A request authenticated by the cookie that changes state must declare a JSON body
   and, when it names an ``Origin``, come from an allowed one (CSRF: a cross-site
   form cannot send ``Content-Type: application/json``; a cross-site ``fetch`` that
   does needs a preflight, which the CORS policy governs).
4. Bodies: a non-empty body must be JSON (415 otherwise — one rule for every route,
   so a client learns it once), and is read with the one size limit, enforced as it
   streams in (chunked bodies included); the bulk publish alone has a larger one
   (``bulk.py``: ``BULK_MAX_BODY_BYTES``), enforced the same way by its route.
5. The hot routes (``hot_routes.py``: publish and the two streams) run as plain ASGI;
   everything else goes to FastAPI with the caller and the body already settled.

``admit`` is synchronous and everything it parses dies with its frame: an idle
stream keeps only its response object alive (memory per connection).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from tocsin.api.bulk import BULK_MAX_BODY_BYTES, BULK_PATH
from tocsin.api.cors import CorsPolicy
from tocsin.api.hot_routes import POLL_SUFFIX, PUBLISH_PATH, HotRoutes
from tocsin.asgi import (
    MAX_BODY_BYTES,
    PRINCIPAL_KEY,
    Headers,
    read_body,
    replay,
    send_error,
)
from tocsin.auth import (
    Authenticator,
    Credential,
    Principal,
    Subscriber,
    find_credential,
    require_subscriber,
)
from tocsin.channels.registry import CHANNELS
from tocsin.errors import TocsinError
from tocsin.metrics import Metrics
from tocsin.ratelimit import RateLimited
from tocsin.ratelimit.limits import Limits, Throttled
from tocsin.streams.endpoint import EventStream
from tocsin.streams.ws import WS_PATH

log = logging.getLogger("tocsin")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset[str]().union(*(c.open_paths for c in CHANNELS))
"""``/api/`` routes that take no credential (one sent anyway is not looked at, so a
cookie never acts on them), each channel's (``ChannelSpec.open_paths``): today the
VAPID public key, marking a pushed notification read with the token it carried, and
the unsubscribe link in emails (its signed token is the credential, checked by the
route)."""
DEMO_PUSH_SERVICE = "/demo/push-service/"
OTHER_BODIES: tuple[tuple[str, frozenset[str] | None, str], ...] = (
    # each channel's (``ChannelSpec.other_bodies``): today email's RFC 8058 one-click
    # unsubscribe, form-encoded
    *(body for c in CHANNELS for body in c.other_bodies),
    # the demo's local push service (mounted in demo mode only; a 404 otherwise)
    # takes what push services take: an aes128gcm body, whatever its type says
    (DEMO_PUSH_SERVICE, None, ""),
)
"""The only paths whose bodies may be other than JSON: ``(path, or a prefix ending in
"/"; the media types allowed besides JSON, None: any; the 415's message)``."""
NO_HEADERS: Headers = ()
ADMITTED = "tocsin.admitted"
"""Scope key of the app :meth:`Gate.connect_direct` admitted for a request it left
to the ASGI path (so the request is admitted, and rate-limited, once)."""


def is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    mime = content_type.partition(";")[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/")
                                          and mime.endswith("+json"))


def check_other_body(path: str, content_type: str | None) -> None:
    """A non-JSON body is refused (415) unless :data:`OTHER_BODIES` allows it here."""
    mime = (content_type or "").partition(";")[0].strip().lower()
    for where, allowed, message in OTHER_BODIES:
        if path == where or (where.endswith("/") and path.startswith(where)):
            if allowed is None or mime in allowed:
                return
            raise TocsinError("unsupported_media_type", message)
    raise TocsinError("unsupported_media_type")


def has_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


class Gate:
    """The application as served: the gate in front of the hot routes and FastAPI."""

    def __init__(self, app: FastAPI, auth: Authenticator, routes: HotRoutes,
                 cors: CorsPolicy, limits: Limits) -> None:
        self.fastapi = app
        self.state = app.state
        self.auth = auth
        self.routes = routes
        self.cors = cors
        self.metrics: Metrics = app.state.tocsin.metrics
        self.limits = limits
        self.limits.hold(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and scope["path"] == WS_PATH:
                await self.admit_socket(scope)(scope, receive, send)
                return
            await self.fastapi(scope, receive, send)  # lifespan (and anything else)
            return
        app = scope.pop(ADMITTED, None)  # admitted as the head completed (connect_direct)
        if app is None:
            app = self.admit(scope)
        route = self.route_class(scope["method"], scope["path"])
        if route == "stream":
            # counted as admitted (200) or refused, never through a wrapped ``send``: a
            # stream parks by reaching uvicorn's own ``send`` (``streams/parked.py``)
            self.metrics.requests.count(
                route, app.err.status if isinstance(app, _Refusal) else 200)
        else:
            send = _counting(send, self.metrics.requests.count, route)
        await app(scope, receive, send)

    def route_class(self, method: str, path: str) -> str:
        """The ``route`` label of ``tocsin_requests_total``: a few classes, never a path
        (paths carry user and topic names)."""
        if path.startswith("/api/"):
            if path == PUBLISH_PATH and method == "POST":
                return "publish"
            if self.routes.is_stream_path(path):
                return "stream"
            return "poll" if path.endswith(POLL_SUFFIX) else "api"
        if path in ("/healthz", "/readyz"):
            return "health"
        return "metrics" if path == "/metrics" else "other"

    def connect_direct(self, scope: Scope, transport: Any, default_headers: Any) -> bool:
        """Called by the server's protocol as a ``GET`` head completes, before any
        request task exists (``server.py``): a stream route that can open parked
        (``EventStream.open_parked``) is served then and there (``True``: the socket
        is taken). Anything else is admitted once, here, and runs as usual."""
        if not self.routes.is_stream_path(scope["path"]):
            return False
        app = self.admit(scope)
        if isinstance(app, EventStream) and app.open_parked(transport, default_headers):
            self.metrics.requests.count("stream", 200)
            return True
        scope[ADMITTED] = app
        return False

    def admit(self, scope: Scope) -> ASGIApp:
        """What serves this request: a route, the framework, or an error reply."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method: str = scope["method"]
        path: str = scope["path"]
        origin = headers.get("origin")
        cors = self.cors.headers(origin) if origin is not None else NO_HEADERS
        try:
            if method == "OPTIONS" and origin is not None \
                    and "access-control-request-method" in headers:
                return self._preflight(origin)
            who: Principal | None = None
            pending = None
            if path.startswith("/api/") and path not in OPEN_PATHS:
                found = find_credential(headers, scope["query_string"])
                who = self.auth.authenticate(found)
                if found is not None and found.source == "cookie" \
                        and method not in SAFE_METHODS:
                    self._check_cross_site(headers, origin)
                # Rate limits: after authentication, before any body is read.
                pending = self.limits.check(method, path, who)
            body = has_body(headers)
            if body:
                length = headers.get("content-length", "")
                limit = BULK_MAX_BODY_BYTES if path == BULK_PATH else MAX_BODY_BYTES
                if length.isdigit() and int(length) > limit:
                    raise TocsinError("payload_too_large")
                content_type = headers.get("content-type")
                if not is_json(content_type):
                    check_other_body(path, content_type)
            route = self.routes.match(method, path, scope, headers, who, cors)
            if route is None:
                route = _Framework(self.fastapi, who, cors, body)
            if pending is not None:  # a remote limiter: its check is awaited first
                return Throttled(self.limits, pending, route, cors, self.refused)
            return route
        except TocsinError as err:
            self.refused(err.code)
            if isinstance(err, RateLimited):
                cors = [*cors, *err.headers]
            return _Refusal(err, cors)

    def admit_socket(self, scope: Scope) -> ASGIApp:
        """``GET /api/ws``: the same credential rule as the streams, settled from the
        upgrade request (or left to the socket's first ``auth`` message). A socket
        authenticated by the cookie must come from an allowed origin (explicitly
        listed, or the server's own host): browsers send cookies with cross-site
        WebSocket upgrades, and CORS does not apply to them (cross-site hijacking)."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        who: Subscriber | None = None
        refused: TocsinError | None = None
        try:
            found = find_credential(headers, scope["query_string"])
            if found is not None:
                who = require_subscriber(self.auth.authenticate(found))
                origin = headers.get("origin")
                if found.source == "cookie" and origin is not None \
                        and origin.rstrip("/") not in self.cors.origins \
                        and origin.partition("://")[2] != headers.get("host"):
                    raise TocsinError("forbidden", f"Origin {origin!r} may not open a "
                                      "WebSocket with the cookie; add it with --cors-origin.")
        except TocsinError as err:
            self.refused(err.code)
            who, refused = None, err
        return self.routes.socket(who, refused, self._token, self._spend_read)

    def _token(self, token: str) -> Principal:
        return self.auth.authenticate(Credential(token, "query"))

    async def _spend_read(self, who: Subscriber) -> None:
        """A WebSocket connect or subscription spends a read token, as a stream does."""
        try:
            pending = self.limits.check("GET", WS_PATH, who)
            if pending is not None:
                wait = await self.limits.limiter.take(*pending)
                if wait > 0:
                    raise RateLimited(wait)
        except RateLimited as err:
            self.refused(err.code)
            raise

    def refused(self, code: str) -> None:
        self.metrics.rejections.labels(code).inc()

    def _check_cross_site(self, headers: dict[str, str], origin: str | None) -> None:
        if not is_json(headers.get("content-type")):
            raise TocsinError("forbidden", "A request authenticated by the tocsin_token "
                              "cookie that changes state must send 'Content-Type: "
                              "application/json' (protection against cross-site requests).")
        if origin is not None and not self.cors.allows(origin) \
                and origin.partition("://")[2] != headers.get("host"):
            raise TocsinError("forbidden", f"Origin {origin!r} may not change state with "
                              "the cookie; add it with --cors-origin.")

    def _preflight(self, origin: str) -> ASGIApp:
        allowed = self.cors.preflight(origin)
        if not allowed:
            return _Refusal(TocsinError("forbidden", f"Origin {origin!r} is not allowed "
                                        "(--cors-origin)."), NO_HEADERS)

        async def reply(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": 204,
                        "headers": [*allowed, (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})

        return reply


class _Refusal:
    __slots__ = ("cors", "err")

    def __init__(self, err: TocsinError, cors: Headers) -> None:
        self.err, self.cors = err, cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_error(send, self.err, self.cors)


class _Framework:
    """Hands the request to FastAPI with the caller settled and the body read (bounded)."""

    __slots__ = ("app", "body", "cors", "who")

    def __init__(self, app: FastAPI, who: Principal | None, cors: Headers, body: bool) -> None:
        self.app, self.who, self.cors, self.body = app, who, cors, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.body:
            try:
                receive = replay(await read_body(receive), receive)
            except TocsinError as err:
                await send_error(send, err, self.cors)
                return
        scope[PRINCIPAL_KEY] = self.who
        if self.cors:
            send = _with_headers(send, self.cors)
        await self.app(scope, receive, send)


def _counting(send: Send, count: Callable[[str, int], None], route: str) -> Send:
    """``send`` that counts the response's status once (``tocsin_requests_total``)."""
    async def send_counted(message: Any) -> None:
        if message["type"] == "http.response.start":
            count(route, message["status"])
        await send(message)

    return send_counted


def _with_headers(send: Send, extra: Headers) -> Send:
    async def send_with(message: Any) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return send_with

